"""The chat settings panel (search type, k, reranking, fetch_k, lambda_mult, sources)."""

from __future__ import annotations

from typing import Any

from chainlit.input_widget import InputWidget, Select, Slider, TextInput
from pydantic import ValidationError

from chains.options import SearchOptions

SEARCH_TYPES = {
    "hybrid (keyword + dense)": "hybrid",
    "dense (meaning)": "dense",
    "keyword (BM25)": "keyword",
    "hybrid + MMR (diverse)": "mmr",
}
RERANKING = {
    "off": "off",
    "cross-encoder (RERANKER_MODEL)": "cross-encoder",
    "by the chat model": "llm",
}
SCOPES = {
    "my documents and the library": "all",
    "this chat's uploads": "chat",
    "the library only": "library",
}


def settings_widgets(options: SearchOptions) -> list[InputWidget]:
    return [
        Select(
            id="search_type",
            label="Search type",
            items=SEARCH_TYPES,
            initial_value=options.search_type,
            description="hybrid: exact words and meaning together; dense: meaning only; "
            "keyword: exact words only (BM25); mmr: hybrid, relevant but not repetitive.",
        ),
        Slider(id="k", label="Passages (k)", initial=options.k, min=1, max=20, step=1),
        Select(
            id="rerank",
            label="Reranking",
            items=RERANKING,
            initial_value=options.rerank,
            description="Reorder up to 20 candidates (fetch_k) before keeping k: a local "
            "cross-encoder, or the chat model. Slower; off by default.",
        ),
        Slider(
            id="fetch_k",
            label="MMR candidates (fetch_k)",
            initial=options.fetch_k,
            min=5,
            max=100,
            step=5,
        ),
        Slider(
            id="lambda_mult",
            label="MMR diversity (lambda_mult: 1 = relevance, 0 = diversity)",
            initial=options.lambda_mult,
            min=0,
            max=1,
            step=0.1,
        ),
        Select(
            id="scope",
            label="Search scope",
            items=SCOPES,
            initial_value=options.scope,
            description="Yours and the library, this chat's uploads, or the library alone.",
        ),
        TextInput(
            id="sources",
            label="Only these sources (comma-separated; empty = all)",
            initial=", ".join(options.sources),
            placeholder="e.g. faq.txt, handbook.pdf",
        ),
    ]


def options_from_settings(values: dict[str, Any], current: SearchOptions) -> SearchOptions:
    """Validated options from the panel's values; invalid values keep the current ones."""
    raw_sources = str(values.get("sources") or "")
    update = {
        "search_type": values.get("search_type", current.search_type),
        "k": int(values.get("k", current.k)),
        "fetch_k": int(values.get("fetch_k", current.fetch_k)),
        "lambda_mult": round(float(values.get("lambda_mult", current.lambda_mult)), 2),
        "sources": tuple(s.strip() for s in raw_sources.split(",") if s.strip()),
        "scope": values.get("scope", current.scope),
        "rerank": values.get("rerank", current.rerank),
    }
    try:
        return SearchOptions(**update)
    except ValidationError:
        return current
