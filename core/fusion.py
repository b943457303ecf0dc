"""Combining search routes: relative score fusion (the default) or reciprocal rank
fusion, and MMR that keeps each document's best passage. Pure functions over `Hit`s
(fusion also over `Candidate`s, hits whose passages are not read yet), shared by the
knowledge base and its test fake.

>>> hit = lambda chunk_id, source="doc": Hit(chunk_id, "", source, "owner", 0, None, None)
>>> dense = [hit("a"), hit("b")]
>>> keyword = [hit("b"), hit("c")]
>>> fused = reciprocal_rank_fusion({"dense": dense, "keyword": keyword}, keyword_weight=1.0)
>>> [(h.id, dict(h.ranks)) for h in fused]
[('b', {'dense': 2, 'keyword': 1}), ('a', {'dense': 1}), ('c', {'keyword': 2})]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

import numpy as np
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from core.knowledge import Candidate, Fusion, Hit, Route

RRF_K = 60  # the usual constant: ranks deep in a list count little

Found = TypeVar("Found", Hit, Candidate)


def fuse(
    routes: Mapping[Route, Sequence[Found]], fusion: Fusion, keyword_weight: float
) -> list[Found]:
    """The routes' hits in one list, best first, by `fusion`."""
    if fusion == "rrf":
        return reciprocal_rank_fusion(routes, keyword_weight=keyword_weight)
    return relative_score_fusion(routes, keyword_weight=keyword_weight)


def relative_score_fusion(
    routes: Mapping[Route, Sequence[Found]], *, keyword_weight: float
) -> list[Found]:
    """Hits of all routes, best first by (dense + weight * keyword) / (1 + weight), each
    route's score taken over the best score in its list (the dense cosine, floored at 0,
    and BM25 both have 0 as their least): the route's best passage scores 1. A hit a
    route did not return scores 0 there. Each hit carries its fused score and its rank
    in every route that found it.

    Unlike reciprocal rank fusion it keeps how far apart the scores are: a passage that
    one route finds far better than the rest is not outvoted by passages both routes
    rank a little lower (Bruch et al., "An Analysis of Fusion Functions for Hybrid
    Retrieval", 2023: the convex combination of scores scaled by their theoretical
    minimum; Weaviate's `relativeScoreFusion`). Each route is read
    `core.store.search.RELATIVE_DEPTH` deep.

    >>> hit = lambda chunk_id, score: Hit(chunk_id, "", "doc", "owner", 0, None, score)
    >>> dense = [hit("a", 0.8), hit("b", 0.6), hit("c", 0.4)]
    >>> keyword = [hit("c", 12.0), hit("b", 3.0)]
    >>> fused = relative_score_fusion({"dense": dense, "keyword": keyword}, keyword_weight=1.0)
    >>> [(h.id, h.score) for h in fused]
    [('c', 0.75), ('a', 0.5), ('b', 0.5)]
    """
    scaled: dict[Route, dict[str, float]] = {}
    for route, hits in routes.items():
        scores = {hit.id: max(hit.score or 0.0, 0.0) for hit in hits}
        best = max(scores.values(), default=0.0)
        scaled[route] = {i: s / best if best > 0 else 0.0 for i, s in scores.items()}
    weights: dict[Route, float] = {"dense": 1.0, "keyword": keyword_weight}
    total = sum(weights[route] for route in routes) or 1.0
    return _combined(
        routes,
        lambda route, _, hit: weights[route] * scaled[route][hit.id] / total,
        # On a tie a passage both routes found wins, then the dense route's better rank.
        tie=lambda ranks: (-len(ranks), ranks.get("dense", 1 << 30)),
    )


def reciprocal_rank_fusion(
    routes: Mapping[Route, Sequence[Found]], *, keyword_weight: float, rrf_k: int = RRF_K
) -> list[Found]:
    """Hits of all routes, best first by sum(weight / (rrf_k + rank)); each carries its
    fused score and its rank in every route that found it."""
    weights: dict[Route, float] = {"dense": 1.0, "keyword": keyword_weight}
    return _combined(
        routes,
        lambda route, rank, _: weights[route] / (rrf_k + rank),
        # On a tie the dense route's better rank wins (it degrades more gracefully).
        tie=lambda ranks: (ranks.get("dense", RRF_K),),
    )


def _combined(
    routes: Mapping[Route, Sequence[Found]],
    share: Callable[[Route, int, Found], float],
    *,
    tie: Callable[[Mapping[Route, int]], tuple[int, ...]],
) -> list[Found]:
    """Hits of all routes, best first by the sum of `share(route, rank, hit)` over the
    routes that found them (ties by `tie` of their ranks, then id); each carries that
    sum as its score and its rank in every route that found it."""
    fused: dict[str, float] = {}
    ranks: dict[str, dict[Route, int]] = {}
    first: dict[str, Found] = {}
    for route, hits in routes.items():
        for rank, hit in enumerate(hits, start=1):
            fused[hit.id] = fused.get(hit.id, 0.0) + share(route, rank, hit)
            ranks.setdefault(hit.id, {})[route] = rank
            first.setdefault(hit.id, hit)
    order = sorted(fused, key=lambda chunk_id: (-fused[chunk_id], *tie(ranks[chunk_id]), chunk_id))
    return [
        replace(first[chunk_id], score=round(fused[chunk_id], 5), ranks=ranks[chunk_id])
        for chunk_id in order
    ]


def diverse(
    candidates: Sequence[Hit],
    vectors: Sequence[list[float]],
    query: Sequence[float],
    *,
    k: int,
    lambda_mult: float,
    fused_relevance: bool = True,
) -> list[Hit]:
    """MMR over `candidates` (best first, with their dense `vectors`), then
    `keep_documents_best`; MMR hits carry no score.

    With `fused_relevance` a candidate's relevance is its place in the fused order (its
    score over the best score), so the search's first passage stays first; otherwise it
    is the dense similarity to `query` (plain MMR, which ignores the keyword route)."""
    if not candidates:
        return []
    if fused_relevance:
        picked = mmr_order(_relevance(candidates), np.array(vectors), k, lambda_mult)
    else:
        picked = maximal_marginal_relevance(
            np.array(query, dtype=np.float32), list(vectors), lambda_mult=lambda_mult, k=k
        )
    chosen = keep_documents_best(candidates, [candidates[i] for i in picked])
    return [replace(hit, score=None) for hit in chosen]


def _relevance(candidates: Sequence[Hit]) -> np.ndarray:
    """Each candidate's score over the best one; by rank when some have no score."""
    scores = [hit.score for hit in candidates]
    known = [score for score in scores if score is not None and score >= 0]
    if len(known) < len(scores) or not max(known):
        return np.array([(RRF_K + 1) / (RRF_K + n) for n in range(1, len(candidates) + 1)])
    values = np.array(known, dtype=np.float64)
    return np.asarray(values / values.max())


def mmr_order(relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_mult: float) -> list[int]:
    """Indexes picked greedily by lambda * relevance - (1 - lambda) * the highest cosine
    similarity to a pick already made.

    >>> vectors = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]])
    >>> mmr_order(np.array([1.0, 0.9, 0.5]), vectors, 2, 0.5)
    [0, 2]
    >>> mmr_order(np.array([1.0, 0.9, 0.5]), vectors, 2, 1.0)
    [0, 1]
    """
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms == 0, 1.0, norms)
    similarity = unit @ unit.T
    picked = [int(np.argmax(relevance))]
    while len(picked) < min(k, len(relevance)):
        closest = similarity[:, picked].max(axis=1)
        gain = lambda_mult * relevance - (1 - lambda_mult) * closest
        gain[picked] = -np.inf
        picked.append(int(np.argmax(gain)))
    return picked


def keep_documents_best(candidates: Sequence[Hit], chosen: Sequence[Hit]) -> list[Hit]:
    """For each document MMR kept, make sure its best candidate is among the picks: its
    lowest-ranked pick gives way. (Plain MMR often drops the right page's best passage
    for being too similar to its second best.)

    >>> hit = lambda chunk_id, source: Hit(chunk_id, "", source, "owner", 0, None, None)
    >>> a1, a2, b1, a3 = hit("a1", "a"), hit("a2", "a"), hit("b1", "b"), hit("a3", "a")
    >>> [h.id for h in keep_documents_best([a1, a2, b1, a3], [a3, b1])]
    ['a1', 'b1']
    """
    position = {hit.id: n for n, hit in enumerate(candidates)}
    result = list(chosen)
    for source in dict.fromkeys(hit.source for hit in chosen):
        best = next(hit for hit in candidates if hit.source == source)
        if any(hit.id == best.id for hit in result):
            continue
        worst = max((hit for hit in result if hit.source == source), key=lambda h: position[h.id])
        result[result.index(worst)] = best
    return result
