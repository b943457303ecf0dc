"""The LCEL RAG chain: condense a follow-up, retrieve, number the passages, stream the answer.

One chain serves every chat: per-chat state (history, search options, access scope)
travels in the typed input, `RagInput`. `astream` yields `RagChunk`s: the input keys
first, then `budget` (the answer's model time, `chains.model_budget`), `standalone` once,
`retrieval` once, then `answer` tokens as the model streams.

When the model fails (hung, stalled, down, erroring), the answer is the retrieved passages,
cited, with the reason in plain words (after whatever the model had written), and once
the stream has ended `budget.failure` holds that reason (None when the model answered).

Example::

    chain = build_rag_chain(retriever, chat_model)
    async for chunk in chain.astream(rag_input("What is MMR?", scope=scope)):
        print(chunk.get("answer", ""), end="")
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any, TypedDict, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnableConfig, RunnableGenerator
from langchain_core.runnables.utils import AddableDict

from chains.formatting import (
    EMPTY_KB_ANSWER,
    NOTHING_FOUND_ANSWER,
    model_failed_answer,
    passages_for_prompt,
    retrieval_only_answer,
)
from chains.model_budget import ModelBudget, ModelLimits
from chains.options import SearchOptions
from chains.prompts import ANSWER_PROMPT, CONDENSE_PROMPT
from chains.retriever import PassageRetriever, Retrieval
from core.errors import ModelUnavailable
from core.knowledge import AccessScope


class RagInput(TypedDict):
    """What the chain needs for one question."""

    question: str
    history: list[BaseMessage]
    options: SearchOptions
    scope: AccessScope


class RagChunk(TypedDict, total=False):
    """One streamed piece of the chain's output (only some keys are set in each)."""

    question: str
    history: list[BaseMessage]
    options: SearchOptions
    scope: AccessScope
    budget: ModelBudget
    standalone: str
    retrieval: Retrieval
    answer: str


RagChain = Runnable[RagInput, RagChunk]


def rag_input(
    question: str,
    *,
    scope: AccessScope,
    history: list[BaseMessage] | None = None,
    options: SearchOptions | None = None,
) -> RagInput:
    """The chain's input: the question, the chat's history, search options and scope."""
    return {
        "question": question,
        "history": history or [],
        "options": options or SearchOptions(),
        "scope": scope,
    }


def build_rag_chain(
    retriever: PassageRetriever,
    chat_model: BaseChatModel | None,
    limits: ModelLimits | None = None,
) -> RagChain:
    """Build the chain; with `chat_model=None` it answers in retrieval-only mode. `limits`
    bound the model's time for each answer (defaults: `ModelLimits()`)."""
    limits = limits or ModelLimits()

    condense = (CONDENSE_PROMPT | chat_model | StrOutputParser()) if chat_model else None

    async def standalone_question(inputs: RagChunk, config: RunnableConfig) -> str:
        if condense is None or not inputs["history"]:
            return inputs["question"]
        condense_input = {"history": inputs["history"], "question": inputs["question"]}
        try:
            rewritten = await inputs["budget"].text(
                lambda: condense.astream(condense_input, config)
            )
        except ModelUnavailable:  # the budget keeps the reason for the answer
            return inputs["question"]
        return rewritten.strip() or inputs["question"]

    async def answer(inputs: RagChunk, config: RunnableConfig) -> AsyncIterator[str]:
        retrieval = inputs["retrieval"]
        if not retrieval.passages:
            # Nothing in the whole scope, or nothing matching this question there?
            everything = replace(inputs["scope"], chat_id=None)
            empty = await retriever.searcher.count(everything) == 0
            yield EMPTY_KB_ANSWER if empty else NOTHING_FOUND_ANSWER
            return
        if chat_model is None:
            yield retrieval_only_answer(retrieval.passages)
            return
        model = chat_model
        prompt = ANSWER_PROMPT.format_messages(
            passages=passages_for_prompt(retrieval.passages),
            history=inputs["history"],
            question=inputs["question"],
        )

        async def tokens() -> AsyncIterator[str]:
            # The model's chunks directly: no prompt run, no sequence run, and no
            # StrOutputParser (its async transform hands every token to a thread pool in
            # langchain-core 1.8, which costs more than the token itself).
            async for message in model.astream(prompt, config):
                if token := message.text:
                    yield token

        written = False
        try:
            async for token in inputs["budget"].stream(tokens):
                written = True
                yield token
        except ModelUnavailable as failure:
            yield model_failed_answer(retrieval.passages, str(failure), cut_off=written)

    async def rag(
        raw: AsyncIterator[dict[str, Any]], config: RunnableConfig
    ) -> AsyncIterator[AddableDict]:
        """The steps in order, each adding its key. One generator rather than a pipe of
        `RunnablePassthrough.assign`s: at 50 concurrent questions the assigns' own
        bookkeeping (a callback run, a tee and tasks per step) was most of the event
        loop's time; the model and retriever calls below are still traced runs."""
        inputs: RagChunk = {}
        async for chunk in raw:
            inputs.update(cast(RagChunk, chunk))
        yield AddableDict(inputs)
        steps: RagChunk = {"budget": ModelBudget(limits)}
        yield AddableDict(steps)
        steps["standalone"] = await standalone_question({**inputs, **steps}, config)
        yield AddableDict(standalone=steps["standalone"])
        steps["retrieval"] = await retriever.retrieve(
            steps["standalone"], inputs["options"], inputs["scope"], config
        )
        yield AddableDict(retrieval=steps["retrieval"])
        async for token in answer({**inputs, **steps}, config):
            yield AddableDict(answer=token)

    # RunnableGenerator's annotation does not admit the `config` parameter it supports.
    chain = RunnableGenerator(rag).with_config(run_name="rag")  # type: ignore[arg-type,var-annotated]
    return cast(RagChain, chain)
