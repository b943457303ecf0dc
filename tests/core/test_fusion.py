"""MMR over the hybrid candidates (core.fusion): relevance is the fused order, not the
dense similarity alone."""

from __future__ import annotations

from core.fusion import diverse
from core.knowledge import Hit


def hit(chunk_id: str, source: str, score: float) -> Hit:
    return Hit(chunk_id, chunk_id, source, "owner", 0, None, score)


def test_mmr_keeps_the_hybrid_search_first_passage_first() -> None:
    """The keyword route put "exact" first (an exact identifier the dense route ranks
    low): plain MMR would start from the passage closest to the query's vector."""
    candidates = [hit("exact", "a.html", 0.033), hit("near", "b.html", 0.020)]
    candidates.append(hit("other", "c.html", 0.016))
    vectors = [[0.2, 1.0], [1.0, 0.1], [0.0, 1.0]]
    query = [1.0, 0.0]
    picked = diverse(candidates, vectors, query, k=2, lambda_mult=0.7)
    assert [h.id for h in picked] == ["exact", "near"]
    assert all(h.score is None for h in picked)


def test_mmr_still_prefers_a_different_page_to_a_near_copy() -> None:
    candidates = [hit("a1", "a.html", 0.033), hit("a2", "a.html", 0.032)]
    candidates.append(hit("b1", "b.html", 0.025))
    vectors = [[1.0, 0.0], [0.999, 0.04], [0.3, 1.0]]
    picked = diverse(candidates, vectors, [1.0, 0.0], k=2, lambda_mult=0.5)
    assert [h.id for h in picked] == ["a1", "b1"]
