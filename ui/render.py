"""What the chat shows: the welcome, the retrieval step, citation elements."""

from __future__ import annotations

import re

import chainlit as cl

from chains.formatting import NO_MODEL_NOTICE
from chains.markdown_escape import code_block, code_span, markdown_text
from chains.retriever import Passage, Retrieval
from chains.safety import sanitize_markdown
from core.knowledge import DocumentInfo

EXAMPLE_QUESTIONS = [
    ("What is RAG?", "What is retrieval-augmented generation, and why do teams use it?"),
    ("Similarity vs. MMR", "How does MMR search differ from plain similarity search?"),
    (
        "Sharing Milvus Lite",
        "Can an ingest script and the web app use the same Milvus Lite database?",
    ),
    ("Do I need an OpenAI key?", "Do I need an OpenAI key to use this app?"),
]
ASK_ACTION = "ask_example"


def example_actions() -> list[cl.Action]:
    """Starter buttons under the welcome: each asks its example question."""
    return [
        cl.Action(name=ASK_ACTION, payload={"question": question}, label=label, tooltip=question)
        for label, question in EXAMPLE_QUESTIONS
    ]


_CITATION = re.compile(r"\[(\d{1,2})\]")


def welcome_text(documents: list[DocumentInfo], chunks: int, model_name: str | None) -> str:
    if documents:
        names = ", ".join(code_span(d.source) for d in documents[:5])
        more = f" and {len(documents) - 5} more" if len(documents) > 5 else ""
        holds = (
            f"The knowledge base holds **{len(documents)} documents** ({chunks} chunks): "
            f"{names}{more}."
        )
    else:
        holds = (
            "The knowledge base is **empty** so far (an administrator can ingest a folder "
            "with `python -m ingest PATH`)."
        )
    mode = (
        f"Answers are written by `{model_name}` from the retrieved passages, with citations."
        if model_name
        else NO_MODEL_NOTICE
    )
    return (
        "Hi! Ask me anything about the documents in the knowledge base.\n\n"
        f"{holds}\n\n{mode}\n\n"
        "Attach files (the paperclip) to add them to your own documents: only you can search "
        "them. `/docs` lists what you can search; `/remove NAME` takes out one of yours.\n\n"
        "The settings next to the message box choose the search: hybrid (exact words and "
        "meaning together, the default), dense, keyword, or hybrid + MMR; and where to look."
    )


MODE_LABELS = {
    "hybrid": "hybrid search: keyword + dense, fused",
    "dense": "dense search",
    "keyword": "keyword search (BM25)",
    "mmr": "hybrid search, diversified (MMR)",
}


RERANK_LABELS = {
    "cross-encoder": "reranked by the cross-encoder",
    "llm": "reranked by the chat model",
}


def retrieval_summary(retrieval: Retrieval) -> str:
    mode = MODE_LABELS[retrieval.search_type]
    if retrieval.reranked_by is not None:
        mode = f"{mode}, {RERANK_LABELS[retrieval.reranked_by]}"
    notice = f"\n\n*{retrieval.notice}*" if retrieval.notice else ""
    if not retrieval.passages:
        return f"No passages found ({retrieval.milliseconds:.0f} ms, {mode}).{notice}"
    lines = [
        f"Found {len(retrieval.passages)} passages in {retrieval.milliseconds:.0f} ms ({mode}):"
    ]
    for p in retrieval.passages:
        score = f" · score {p.score:.2f}" if p.score is not None else ""
        ranks = ", ".join(f"{route} #{rank}" for route, rank in sorted(p.ranks.items()))
        lines.append(f"- [{p.n}] {markdown_text(p.label)}{score}{f' · {ranks}' if ranks else ''}")
    return "\n".join(lines) + notice


def cited_numbers(answer: str, available: int) -> list[int]:
    """The passage numbers an answer cites, in order of first citation."""
    seen: list[int] = []
    for match in _CITATION.finditer(answer):
        n = int(match.group(1))
        if 1 <= n <= available and n not in seen:
            seen.append(n)
    return seen


def citation_elements(passages: list[Passage], numbers: list[int]) -> list[cl.Text]:
    """One side element per cited passage, named "[n]" so the answer's citations link to it."""
    by_number = {p.n: p for p in passages}
    elements = []
    for n in numbers:
        p = by_number[n]
        facts = [f"**Source:** {code_span(p.source)}"]
        if p.title:
            facts.append(f"**Title:** {markdown_text(p.title)}")
        if p.section:
            facts.append(f"**Section:** {markdown_text(p.section)}")
        if p.page is not None:
            facts.append(f"**Page:** {p.page}")
        facts.append(f"**Score:** {p.score:.3f}" if p.score is not None else "**Score:** n/a (MMR)")
        # Documents are untrusted: Markdown is shown formatted through the same allow-list
        # as answers (no image, link or HTML), any other text as written, every character.
        text = sanitize_markdown(p.body) if p.written_in_markdown else code_block(p.body)
        content = " · ".join(facts) + "\n\n" + text
        elements.append(cl.Text(name=f"[{n}]", content=content, display="side"))
    return elements
