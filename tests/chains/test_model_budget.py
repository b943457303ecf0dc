"""The model's time budget on its own, with fake token streams (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2
import openai
import pytest

from chains.model_budget import ModelBudget, ModelLimits
from core.errors import ModelUnavailable

LIMITS = ModelLimits(first_token=0.2, stall=0.2, total=1.0, retries=2, backoff=0.01)


async def tokens(*words: str, then: BaseException | None = None) -> AsyncIterator[str]:
    for word in words:
        yield word
    if then is not None:
        raise then


async def test_tokens_pass_through_and_the_budget_stays_clean() -> None:
    budget = ModelBudget(LIMITS)
    assert await budget.text(lambda: tokens("a", "b")) == "ab"
    assert budget.failure is None


async def test_a_bug_is_not_mistaken_for_a_model_failure() -> None:
    budget = ModelBudget(LIMITS)
    with pytest.raises(KeyError):
        await budget.text(lambda: tokens("a", then=KeyError("prompt variable")))
    assert budget.failure is None


async def test_a_failure_is_retried_then_sticks_for_the_rest_of_the_answer() -> None:
    calls = 0

    def unavailable() -> AsyncIterator[str]:
        nonlocal calls
        calls += 1
        return tokens(then=openai.APIConnectionError(request=httpx2.Request("POST", "http://m")))

    budget = ModelBudget(LIMITS)
    with pytest.raises(ModelUnavailable, match="could not be reached"):
        await budget.text(unavailable)
    assert calls == 1 + LIMITS.retries
    with pytest.raises(ModelUnavailable, match="could not be reached"):  # the answer's: at once
        await budget.text(unavailable)
    assert calls == 1 + LIMITS.retries


async def test_a_failure_the_provider_does_not_call_transient_is_not_retried() -> None:
    calls = 0

    def refused() -> AsyncIterator[str]:
        nonlocal calls
        calls += 1
        return tokens(then=ModelUnavailable("The language model rejected the API key."))

    with pytest.raises(ModelUnavailable, match="rejected"):
        await ModelBudget(LIMITS).text(refused)
    assert calls == 1


async def test_a_stall_after_the_first_token_is_not_retried() -> None:
    async def stalls() -> AsyncIterator[str]:
        yield "a"
        await asyncio.sleep(10)
        yield "never"

    budget = ModelBudget(LIMITS)
    seen: list[str] = []
    with pytest.raises(ModelUnavailable, match="stopped sending its answer for 0.2 s"):
        async for token in budget.stream(stalls):
            seen.append(token)
    assert seen == ["a"]
