"""Fusing the hybrid routes (core.fusion), and MMR over the hybrid candidates: relevance
is the fused order, not the dense similarity alone."""

from __future__ import annotations

from core.fusion import diverse, fuse, reciprocal_rank_fusion, relative_score_fusion
from core.knowledge import Candidate, Hit, Route


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


def _routes() -> dict[Route, list[Hit]]:
    """`clear` is far the closest passage by meaning and has no keyword match; `middling`
    is found by both routes, well below the best of each; `keyword` is BM25's best."""
    dense = [hit("clear", "a.html", 0.80), hit("middling", "b.html", 0.40)]
    dense.append(hit("keyword", "c.html", 0.38))
    keyword = [hit("keyword", "c.html", 9.0), hit("middling", "b.html", 3.0)]
    return {"dense": dense, "keyword": keyword}


def test_relative_scores_keep_how_far_apart_the_passages_are() -> None:
    """Reciprocal rank fusion ranks a passage that both routes found in second place
    above one route's far better first: only ranks count."""
    by_rank = reciprocal_rank_fusion(_routes(), keyword_weight=1.0)
    assert [h.id for h in by_rank] == ["keyword", "middling", "clear"]

    fused = relative_score_fusion(_routes(), keyword_weight=1.0)
    assert [h.id for h in fused] == ["keyword", "clear", "middling"]
    assert [h.score for h in fused] == [0.7375, 0.5, round((0.5 + 1 / 3) / 2, 5)]
    assert dict(fused[0].ranks) == {"dense": 3, "keyword": 1}
    assert dict(fused[1].ranks) == {"dense": 1}


def test_relative_fusion_weighs_the_keyword_route() -> None:
    heavy = relative_score_fusion(_routes(), keyword_weight=3.0)
    assert [h.id for h in heavy] == ["keyword", "middling", "clear"]
    assert fuse(_routes(), "relative", 3.0) == heavy
    assert fuse(_routes(), "rrf", 1.0) == reciprocal_rank_fusion(_routes(), keyword_weight=1.0)


def test_relative_fusion_ties_go_to_a_passage_both_routes_found() -> None:
    """BM25's only match, whose cosine is 0, ties with the dense route's best."""
    dense = [hit("near", "a.txt", 0.5), hit("exact", "c.pdf", -0.1)]
    keyword = [hit("exact", "c.pdf", 4.0)]
    fused = relative_score_fusion({"dense": dense, "keyword": keyword}, keyword_weight=1.0)
    assert [(h.id, h.score) for h in fused] == [("exact", 0.5), ("near", 0.5)]


def test_relative_fusion_of_empty_or_scoreless_routes() -> None:
    assert relative_score_fusion({"dense": [], "keyword": []}, keyword_weight=1.0) == []
    zero = [hit("a", "a.html", 0.0), hit("b", "b.html", -0.2)]
    fused = relative_score_fusion({"dense": zero}, keyword_weight=1.0)
    assert [(h.id, h.score) for h in fused] == [("a", 0.0), ("b", 0.0)]


def test_keys_and_scores_fuse_as_hits_do() -> None:
    """A fused search ranks its routes' keys and scores before reading any passage
    (`Candidate`s): the same order, scores and ranks as fusing whole hits."""
    routes = _routes()
    keys = {
        route: [Candidate(h.id, h.score, h.ranks) for h in hits] for route, hits in routes.items()
    }
    for fusion in ("relative", "rrf"):
        whole = fuse(routes, fusion, 1.0)
        assert [(c.id, c.score, dict(c.ranks)) for c in fuse(keys, fusion, 1.0)] == [
            (h.id, h.score, dict(h.ranks)) for h in whole
        ]
