"""Per-chat search options, validated and bounded."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SearchType = Literal["similarity", "mmr"]
Scope = Literal["all", "chat"]


class SearchOptions(BaseModel):
    """How to retrieve: similarity or MMR, how many passages, optional source filter.

    >>> SearchOptions(search_type="mmr", k=3).fetch_k
    20
    """

    model_config = ConfigDict(frozen=True)

    search_type: SearchType = "similarity"
    k: int = Field(default=4, ge=1, le=20)
    fetch_k: int = Field(default=20, ge=1, le=100)
    lambda_mult: float = Field(default=0.5, ge=0.0, le=1.0)
    sources: tuple[str, ...] = ()
    scope: Scope = "all"  # "chat": only the documents uploaded in this chat

    @model_validator(mode="before")
    @classmethod
    def _fetch_at_least_k(cls, values: Any) -> Any:
        """MMR needs at least k candidates: raise fetch_k to k rather than fail."""
        if isinstance(values, dict) and "k" in values:
            k = int(values["k"])
            if int(values.get("fetch_k", 20)) < k:
                return {**values, "fetch_k": k}
        return values
