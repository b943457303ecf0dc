"""`python -m bench.retrieval_variants GOLDEN`: ways of fusing the two search routes,
compared on one golden set without re-running a search per variant.

For each question it runs the dense and the keyword (BM25) route once, `--depth` deep,
on the configured collection, then ranks those candidates in each variant (RRF's k, the
keyword route's weight, how deep each route is read, a page-aware step, relative score
fusion, MMR settings) and
grades the first `--k` as `python -m chains.evaluate` does: hit@1, hit@k, MRR, answer@k,
on the whole set and on its odd and even lines (choose on one half, check on the other).
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from bench.common import command_line, table
from chains.evaluate import GoldenQuestion, _normal, read_golden
from core.fusion import diverse, reciprocal_rank_fusion, relative_score_fusion
from core.knowledge import AccessScope, Hit, Route, SearchMode, SearchRequest
from core.settings import load_settings


@dataclass(frozen=True)
class Candidates:
    """One question's route lists (best first, `depth` deep) and its query vector."""

    golden: GoldenQuestion
    routes: dict[Route, list[Hit]]
    query_vector: list[float]


Variant = Callable[[Candidates, int], list[Hit]]


def page_aware(hits: Sequence[Hit], weight: float) -> list[Hit]:
    """A page-aware step (tried, not used by the app): `hits` re-sorted by their score
    plus `weight` times their page's best score."""
    best: dict[str, float] = {}
    for hit in hits:
        best[hit.source] = max(best.get(hit.source, 0.0), hit.score or 0.0)
    return sorted(hits, key=lambda h: -((h.score or 0.0) + weight * best[h.source]))


def fused_routes(depth: int, rrf_k: int = 60, weight: float = 1.0, pages: float = 0.0) -> Variant:
    def run(c: Candidates, k: int) -> list[Hit]:
        routes = {route: hits[:depth] for route, hits in c.routes.items()}
        hits = reciprocal_rank_fusion(routes, keyword_weight=weight, rrf_k=rrf_k)
        return (page_aware(hits, pages) if pages else hits)[:k]

    return run


def relative(depth: int, weight: float, keyword_depth: int | None = None) -> Variant:
    """The app's relative score fusion (`core.fusion.relative_score_fusion`), the keyword
    route read `keyword_depth` deep (`depth` when None)."""
    depths: dict[Route, int] = {"dense": depth, "keyword": keyword_depth or depth}

    def run(c: Candidates, k: int) -> list[Hit]:
        routes = {route: hits[: depths[route]] for route, hits in c.routes.items()}
        return relative_score_fusion(routes, keyword_weight=weight)[:k]

    return run


def min_max(depth: int, weight: float) -> Variant:
    """Relative score fusion with the dense cosine min-max scaled over the route's list
    (tried, not used: its lowest candidate scores 0, so the result depends on the depth)."""

    def run(c: Candidates, k: int) -> list[Hit]:
        dense, keyword = c.routes["dense"][:depth], c.routes["keyword"][:depth]
        cosines = [h.score or 0.0 for h in dense]
        low, high = (min(cosines), max(cosines)) if cosines else (0.0, 1.0)
        best_bm25 = max((h.score or 0.0 for h in keyword), default=1.0) or 1.0
        scores: dict[str, float] = {}
        hits: dict[str, Hit] = {}
        for h in dense:
            scores[h.id] = ((h.score or 0.0) - low) / ((high - low) or 1.0)
            hits[h.id] = h
        for h in keyword:
            scores[h.id] = scores.get(h.id, 0.0) + weight * (h.score or 0.0) / best_bm25
            hits.setdefault(h.id, h)
        return [hits[i] for i in sorted(scores, key=lambda i: -scores[i])][:k]

    return run


def route(name: Route) -> Variant:
    return lambda c, k: c.routes[name][:k]


async def collect(
    questions: Sequence[GoldenQuestion], depth: int
) -> tuple[list[Candidates], dict[str, list[float]]]:
    """Both routes for every question, and the dense vector of every candidate."""
    from core.resources import opened

    out: list[Candidates] = []
    vectors: dict[str, list[float]] = {}
    async with opened(load_settings()) as resources:
        kb = resources.kb
        for golden in tqdm(questions, unit="question"):
            routes: dict[Route, list[Hit]] = {}
            for name in ("dense", "keyword"):
                mode: SearchMode = "dense" if name == "dense" else "keyword"
                request = SearchRequest(
                    golden.question, AccessScope.everything(), mode, depth, depth, 0.5
                )
                routes[name] = await kb.search(request)
            query_vector = await resources.embeddings.aembed_query(golden.question)
            new = {h.id: h.text for hits in routes.values() for h in hits if h.id not in vectors}
            embedded = await resources.embeddings.aembed_documents(list(new.values()))
            vectors.update(zip(new, embedded, strict=True))
            out.append(Candidates(golden, routes, query_vector))
    return out, vectors


def mmr(
    vectors: dict[str, list[float]], pool_of: Variant, fetch_k: int, lambda_mult: float, fused: bool
) -> Variant:
    def run(c: Candidates, k: int) -> list[Hit]:
        pool = pool_of(c, fetch_k)
        return diverse(
            pool,
            [vectors[h.id] for h in pool],
            c.query_vector,
            k=k,
            lambda_mult=lambda_mult,
            fused_relevance=fused,
        )

    return run


def grade(candidates: Sequence[Candidates], variant: Variant, k: int) -> list[str]:
    ranks, answers = [], []
    for c in candidates:
        hits = variant(c, k)
        sources = c.golden.source
        ranks.append(next((n for n, h in enumerate(hits, 1) if h.source in sources), None))
        if c.golden.answer is not None:
            snippet = _normal(c.golden.answer)
            answers.append(any(snippet in _normal(h.text) for h in hits))
    n = len(candidates)
    return [
        f"{sum(r == 1 for r in ranks) / n:.0%}",
        f"{sum(r is not None for r in ranks) / n:.0%}",
        f"{sum(1 / r for r in ranks if r) / n:.3f}",
        f"{sum(answers) / len(answers):.0%}" if answers else "n/a",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval_variants")
    parser.add_argument("golden", type=Path)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--depth", type=int, default=50, help="candidates read from each route")
    parser.add_argument(
        "--cache", type=Path, help="keep the searches' results here, and reuse them when present"
    )
    args = parser.parse_args(argv)
    questions = read_golden(args.golden)
    if args.cache is not None and args.cache.exists():
        candidates, vectors = pickle.loads(args.cache.read_bytes())  # noqa: S301 (our own file)
    else:
        candidates, vectors = asyncio.run(collect(questions, args.depth))
        if args.cache is not None:
            args.cache.write_bytes(pickle.dumps((candidates, vectors)))
    variants: dict[str, Variant] = {
        "dense": route("dense"),
        "keyword": route("keyword"),
        "rrf k=60, routes k deep (before)": fused_routes(args.k),
    }
    for depth in (10, 20, 50):
        for rrf_k in (10, 30, 60):
            for weight in (1.0, 1.5, 2.0):
                variants[f"rrf k={rrf_k}, depth {depth}, keyword x{weight}"] = fused_routes(
                    depth, rrf_k, weight
                )
    for depth in (4, 20):
        for pages in (0.5, 1.0):
            variants[f"rrf k=60, depth {depth}, page-aware {pages}"] = fused_routes(
                depth, pages=pages
            )
    for depth in (8, 10, 12, 14, 16, 20, 30, 50):
        for weight in (1.0, 1.25, 1.5, 1.75, 2.0):
            variants[f"relative, depth {depth}, keyword x{weight}"] = relative(depth, weight)
    for keyword_depth in (4, 6, 8, 10, 12, 16):
        variants[f"relative, dense 20 deep, keyword {keyword_depth} deep"] = relative(
            20, 1.0, keyword_depth
        )
    for depth in (20, 50):
        for weight in (1.0, 1.5, 2.0):
            variants[f"min-max dense, depth {depth}, keyword x{weight}"] = min_max(depth, weight)
    for relevance in ("dense", "fused"):
        for lambda_mult in (0.5, 0.7, 0.85):
            variants[f"mmr over rrf, {relevance} relevance, lambda {lambda_mult}, fetch 20"] = mmr(
                vectors, fused_routes(20), 20, lambda_mult, relevance == "fused"
            )
    for lambda_mult in (0.5, 0.7, 0.85):
        variants[f"mmr over relative, fused relevance, lambda {lambda_mult}, fetch 20"] = mmr(
            vectors, relative(20, 1.0), 20, lambda_mult, True
        )
    halves = {
        "all": candidates,
        "odd lines": candidates[0::2],
        "even lines": candidates[1::2],
    }
    k = args.k
    rows = []
    for name, variant in variants.items():
        row = [name]
        for part in halves.values():
            row += grade(part, variant, k)
        rows.append(row)
    headers = ["variant"]
    for half in halves:
        headers += [f"{half}: hit@1", f"hit@{k}", "MRR", f"answer@{k}"]
    print(command_line())
    print(f"{len(questions)} questions from {args.golden}")
    print(table(headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
