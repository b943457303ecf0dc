"""Model faults under a background checker: a question every ~200 ms through the real
chain (real Milvus Lite, the real OpenAI client, the stand-in OpenAI server) while the
stand-in hangs, answers HTTP 500, stalls mid-stream or drops the connection mid-stream.

Before the fault every answer is the model's; during it every answer is the retrieved
passages, cited, with the reason in plain words, within the answer's time budget
(seconds, not minutes); after it, the model's answers are back within 10 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chains.model_budget import ModelLimits
from chains.rag import build_rag_chain, rag_input
from chains.retriever import PassageRetriever
from core.knowledge import AccessScope
from core.providers import build_chat_model
from core.store.knowledge_base import MilvusKnowledgeBase
from tests.conftest import make_settings
from tests.faults.checker import QuestionChecker
from tests.openai_standin import DEFAULT_ANSWER, OpenAIStandIn

LIMITS = ModelLimits(first_token=1.0, stall=1.0, total=2.0, retries=2, backoff=0.1)
QUESTION = "alpha text about apples"
REASONS = {
    "hang": "The language model did not answer within the 2 s allowed for an answer.",
    "error": "The language model returned an error (HTTP 500). Try again shortly.",
    "stall": "The language model stopped sending its answer for 1 s.",
    "drop": "The connection to the language model broke off in the middle of its answer.",
}


class AnsweredFromPassages(Exception):
    """The model failed, so the answer is the passages; `reason` says why."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.text = text


@pytest.mark.parametrize("mode", sorted(REASONS))
async def test_model_fault_gives_the_passages_with_the_reason_then_recovers(
    mode: str, seeded_kb: MilvusKnowledgeBase, openai_standin: OpenAIStandIn, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, openai_base_url=openai_standin.base_url, llm_model="m")
    chain = build_rag_chain(
        PassageRetriever(searcher=seeded_kb), build_chat_model(settings), LIMITS
    )

    async def ask() -> str:
        text, budget = "", None
        async for chunk in chain.astream(rag_input(QUESTION, scope=AccessScope.everything())):
            budget = chunk.get("budget", budget)
            text += chunk.get("answer", "")
        assert budget is not None
        if budget.failure is not None:
            raise AnsweredFromPassages(str(budget.failure), text)
        return text

    async with QuestionChecker(ask, timeout=LIMITS.total + 10) as checker:
        await checker.wait_for_successes(3)
        fault_started = checker.mark()
        openai_standin.mode = mode
        during = await checker.wait_for_outcomes(3, since=fault_started, within=20)
        fault_ended = checker.mark()
        openai_standin.mode = "ok"
        await checker.wait_for_successes(3, since=fault_ended, within=10)

    before = checker.finished_before(fault_started)
    assert before and all(o.answer == DEFAULT_ANSWER for o in before[-3:])
    for outcome in during:
        error = outcome.error
        assert isinstance(error, AnsweredFromPassages), checker.describe(during)
        assert error.reason == REASONS[mode]
        assert "[1] **a.txt**" in error.text and "> alpha text about apples" in error.text
        assert outcome.seconds < LIMITS.total + 1  # seconds, not minutes
    assert checker.recovered_within(fault_ended) <= 10
