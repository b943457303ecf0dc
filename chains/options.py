"""Per-chat search options, validated and bounded."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.knowledge import (
    KEYWORD_WEIGHT,
    AccessScope,
    Fusion,
    RerankMode,
    SearchMode,
    SearchRequest,
)

Scope = Literal["all", "chat", "library"]


SEARCH_TYPES: dict[str, SearchMode] = {
    "hybrid": "hybrid",
    "dense": "dense",
    "keyword": "keyword",
    "mmr": "mmr",
    "similarity": "dense",  # the first release's name for dense search
}


class SearchOptions(BaseModel):
    """How to retrieve: the search mode (hybrid by default), how many passages, MMR's
    candidates and diversity, how hybrid search fuses its routes and the keyword route's
    weight, an optional source filter, optional reranking.

    >>> SearchOptions(search_type="mmr", k=3).fetch_k
    20
    >>> SearchOptions(search_type="similarity").search_type
    'dense'
    >>> SearchOptions(k=30)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    pydantic_core.ValidationError: k: Input should be less than or equal to 20
    """

    model_config = ConfigDict(frozen=True)

    search_type: SearchMode = "hybrid"
    k: int = Field(default=4, ge=1, le=20)
    fetch_k: int = Field(default=20, ge=1, le=100)
    lambda_mult: float = Field(default=0.7, ge=0.0, le=1.0)  # bench/README.md: 0.5 lost passages
    fusion: Fusion = "relative"
    keyword_weight: float = Field(default=KEYWORD_WEIGHT, ge=0.0, le=5.0)
    sources: tuple[str, ...] = ()
    scope: Scope = "all"  # "chat": this chat's uploads; "library": the shared library
    rerank: RerankMode = "off"  # reorder up to 20 candidates (see core.rerank)

    @model_validator(mode="before")
    @classmethod
    def _fetch_at_least_k(cls, values: Any) -> Any:
        """MMR needs at least k candidates: raise fetch_k to k rather than fail. Old mode
        names are read as the new ones."""
        if isinstance(values, dict) and values.get("search_type") in SEARCH_TYPES:
            values = {**values, "search_type": SEARCH_TYPES[values["search_type"]]}
        if isinstance(values, dict) and "k" in values:
            k = int(values["k"])
            fetch_k = values.get("fetch_k", cls.model_fields["fetch_k"].default)
            if int(fetch_k) < k:
                return {**values, "fetch_k": k}
        return values

    def request(self, query: str, scope: AccessScope) -> SearchRequest:
        """The knowledge-base search these options ask for, within `scope`."""
        return SearchRequest(
            query=query,
            scope=scope,
            mode=self.search_type,
            k=self.k,
            fetch_k=self.fetch_k,
            lambda_mult=self.lambda_mult,
            sources=self.sources,
            fusion=self.fusion,
            keyword_weight=self.keyword_weight,
            rerank=self.rerank,
        )
