"""What crash-safe document versions cost a question: the version ledger's filter and
its re-check (`core.store.ledger`) on every search.

    python -m bench.ledger_overhead                  # Milvus Lite, in process
    python -m bench.ledger_overhead --uri URI        # a milvus-lite server or Milvus server
    python -m bench.ledger_overhead --start-server   # a Milvus 2.3.5 server it starts

Each search runs two ways on the same collection, interleaved: through the knowledge
base (`kb.search`: the ledger's exclusion filter, the search, a fresh ledger read to
re-check the hits) and through the bare routes with only the scope filter (the search as
it was before the ledger). Rows: idle ledger (nothing in flight, the common case) and a
ledger holding `--pending` documents being written (their exclusion filter is non-empty),
one user at a time and `--users` at once. Local all-MiniLM-L6-v2 embeddings.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

from bench.common import (
    backend,
    bench_settings,
    command_line,
    percentile,
    scratch,
    table,
    versions,
)
from core.knowledge import (
    LIBRARY_OWNER,
    AccessScope,
    ChunkRecord,
    DocumentKey,
    SearchMode,
    SearchRequest,
)
from core.providers import build_embeddings
from core.store import MilvusKnowledgeBase
from core.store.records import scope_filter

WORDS = "pump valve filter seal motor gasket bearing rotor impeller housing".split()


def chunks(count: int) -> list[ChunkRecord]:
    document = DocumentKey(LIBRARY_OWNER, "bench.txt")
    return [
        ChunkRecord(
            id=f"bench-{i}",
            text=f"Part {i}: the {WORDS[i % 10]} of unit {i} needs a {WORDS[(i * 7) % 10]} check.",
            document=document,
            chunk=i,
            chunks=count,
            file_hash="bench",
            added_at=0,
        )
        for i in range(count)
    ]


async def timed(calls: Sequence[Callable[[], Awaitable[object]]]) -> list[float]:
    """Milliseconds per call, the calls run at once."""

    async def one(call: Callable[[], Awaitable[object]]) -> float:
        start = time.perf_counter()
        await call()
        return (time.perf_counter() - start) * 1000

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def measure(kb: MilvusKnowledgeBase, mode: SearchMode, users: int, runs: int) -> list[str]:
    scope = AccessScope.for_user("bench-user")
    where = scope_filter(scope, ())
    with_ledger: list[float] = []
    without: list[float] = []
    for run in range(runs):
        requests = [
            SearchRequest(f"{WORDS[(run + u) % 10]} check of unit {run}", scope, mode, 6, 20, 0.5)
            for u in range(users)
        ]
        plain = [
            (lambda r=r: kb._routes.run(mode, r, where, kb._routes.query_vector(r.query)))
            for r in requests  # noqa: SLF001
        ]
        ledger = [(lambda r=r: kb.search(r)) for r in requests]
        first, second = (plain, ledger) if run % 2 else (ledger, plain)
        a, b = await timed(first), await timed(second)
        (without if run % 2 else with_ledger).extend(a)
        (with_ledger if run % 2 else without).extend(b)
    added = statistics.median(with_ledger) - statistics.median(without)
    return [
        f"{statistics.median(without):.1f}",
        f"{statistics.median(with_ledger):.1f}",
        f"{added:+.1f}",
        f"{percentile(without, 95):.1f}",
        f"{percentile(with_ledger, 95):.1f}",
    ]


async def main(args: argparse.Namespace) -> None:
    with backend(args) as uri, scratch("bench-lite-") as lite_dir:
        settings = bench_settings(uri, lite_dir)
        embeddings = build_embeddings(settings)
        kb = await MilvusKnowledgeBase.open(
            settings, embeddings, collection="bench_ledger", drop=True
        )
        try:
            await kb.add_chunks(chunks(args.chunks))
            await kb.flush()
            label = kb.capabilities.label
            reads = [(await timed([kb._ledger.fresh]))[0] for _ in range(100)]  # noqa: SLF001
            rows = []
            for pending in (0, args.pending):
                for i in range(pending):
                    await kb.begin_version(DocumentKey(LIBRARY_OWNER, f"doc-{i}.txt"), f"p{i}")
                for mode in ("dense", "hybrid"):
                    for users in (1, args.users):
                        cells = await measure(kb, mode, users, args.runs)
                        rows.append([label, pending, mode, users, *cells])
        finally:
            await kb.close()
    print(command_line())
    print(versions())
    print(f"{args.chunks} chunks, {args.runs} rounds per row, ms per search")
    print(
        f"one ledger read alone (idle ledger): median {statistics.median(reads):.2f} ms, "
        f"p95 {percentile(reads, 95):.2f} ms"
    )
    print(
        table(
            [
                "store",
                "pending docs",
                "mode",
                "users",
                "median without",
                "median with ledger",
                "added",
                "p95 without",
                "p95 with ledger",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uri", help="a Milvus URI (default: Milvus Lite in process)")
    parser.add_argument("--start-server", action="store_true", help="start a Milvus 2.3.5")
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--pending", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
