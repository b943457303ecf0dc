"""The LCEL RAG chain: condense a follow-up, retrieve, number the passages, stream the answer.

One chain serves every chat: per-chat state (history, search options, scope) travels in
the input. `astream` yields dict chunks: `{"standalone": str}` once, `{"retrieval":
Retrieval}` once, then `{"answer": token}` chunks as the model streams.

>>> chain = build_rag_chain(retriever, chat_model)            # doctest: +SKIP
>>> async for chunk in chain.astream(rag_input("What is MMR?")):  # doctest: +SKIP
...     print(chunk)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableGenerator,
    RunnableLambda,
    RunnablePassthrough,
)

from chains.formatting import (
    EMPTY_KB_ANSWER,
    NOTHING_FOUND_ANSWER,
    passages_for_prompt,
    retrieval_only_answer,
)
from chains.options import SearchOptions
from chains.prompts import ANSWER_PROMPT, CONDENSE_PROMPT
from chains.retriever import PassageRetriever, Retrieval
from core.filters import MilvusFilter


def rag_input(
    question: str,
    *,
    history: list[BaseMessage] | None = None,
    options: SearchOptions | None = None,
    where: MilvusFilter | None = None,
) -> dict[str, Any]:
    """The chain's input: the question, the chat's history, search options and scope."""
    return {
        "question": question,
        "history": history or [],
        "options": options or SearchOptions(),
        "where": where,
    }


def build_rag_chain(
    retriever: PassageRetriever, chat_model: BaseChatModel | None
) -> Runnable[dict[str, Any], dict[str, Any]]:
    """Build the chain; with `chat_model=None` it answers in retrieval-only mode."""

    condense = (CONDENSE_PROMPT | chat_model | StrOutputParser()) if chat_model else None
    # No StrOutputParser on the streamed answer: its async transform hands every token to
    # a thread pool (langchain-core 1.8), which costs more than the token itself.
    answer_with_model = (ANSWER_PROMPT | chat_model) if chat_model else None

    async def standalone_question(inputs: dict[str, Any], config: RunnableConfig) -> str:
        if condense is None or not inputs["history"]:
            return str(inputs["question"])
        rewritten = await condense.ainvoke(
            {"history": inputs["history"], "question": inputs["question"]}, config
        )
        return rewritten.strip() or str(inputs["question"])

    async def retrieve(inputs: dict[str, Any]) -> Retrieval:
        return await retriever.retrieve(inputs["standalone"], inputs["options"], inputs["where"])

    async def answer(
        chunks: AsyncIterator[dict[str, Any]], config: RunnableConfig
    ) -> AsyncIterator[str]:
        inputs: dict[str, Any] = {}
        async for chunk in chunks:
            inputs.update(chunk)
        retrieval: Retrieval = inputs["retrieval"]
        if not retrieval.passages:
            yield EMPTY_KB_ANSWER if not retriever.kb.exists else NOTHING_FOUND_ANSWER
            return
        if answer_with_model is None:
            yield retrieval_only_answer(retrieval.passages)
            return
        prompt_input = {
            "passages": passages_for_prompt(retrieval.passages),
            "history": inputs["history"],
            "question": inputs["question"],
        }
        async for message in answer_with_model.astream(prompt_input, config):
            if token := message.text:
                yield token

    return (
        RunnablePassthrough.assign(standalone=RunnableLambda(standalone_question))
        | RunnablePassthrough.assign(retrieval=RunnableLambda(retrieve))
        | RunnablePassthrough.assign(answer=RunnableGenerator(answer))  # type: ignore[arg-type]
    ).with_config(run_name="rag")
