"""The langchain-milvus async tutorial's table, reproduced on our stack, with limit rows.

    python -m bench.async_vs_sync                    # Milvus Lite
    python -m bench.async_vs_sync --start-server     # a Milvus 2.3.5 server it starts
    python -m bench.async_vs_sync --uri http://127.0.0.1:19530

For add, search and delete at 10 and 100 operations, on a fresh collection each:
sync (a loop of single calls), async (the same calls gathered), and the limit (the same
work as one batched call). Two stacks: `plain` is langchain-milvus as shipped with the
local MiniLM embeddings; `app` is this app's store and embeddings (`KnowledgeStore`,
`CoalescingEmbeddings`), which coalesce concurrent calls into batches.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import uuid
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_milvus import Milvus

from bench.common import Timer, backend, bench_settings, command_line, scratch, table, versions
from core.batched_embeddings import CoalescingEmbeddings
from core.knowledge import LIBRARY_OWNER
from core.providers import _base_embeddings
from core.settings import Settings
from core.store.coalescing import CoalescingMilvus
from core.store.connection import capabilities_for, connect, probe
from core.store.schema import create_collection
from core.store.views import store_kwargs

SEARCH_CORPUS = 1000


def make_store(kind: str, settings: Settings, embeddings: Embeddings) -> Milvus:
    """`plain`: langchain-milvus creating its own collection, as shipped. `app`: the app's
    coalescing store over a schema-v2 collection (typed fields, owner partition key, and
    the BM25 field where the backend has it), as the knowledge base creates it."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    client = connect(settings)
    capabilities = probe(client, settings.milvus_timeout)
    if kind == "plain":
        return Milvus(embedding_function=embeddings, **store_kwargs(settings, name, capabilities))
    dim = len(embeddings.embed_query("dimension"))
    create_collection(
        client,
        name,
        model=settings.embedding_model_name,
        dim=dim,
        capabilities=capabilities,
        timeout=settings.milvus_timeout,
    )
    return CoalescingMilvus(
        embedding_function=CoalescingEmbeddings(embeddings),
        **store_kwargs(settings, name, capabilities),
    )


# The typed fields a schema-v2 row must carry (the plain stack ignores them).
V2_FIELDS = {"owner": LIBRARY_OWNER, "chat_id": "", "page": 0, "chunk": 0, "chunks": 1}


def docs(n: int, prefix: str = "test document") -> list[Document]:
    return [
        Document(
            page_content=f"{prefix} {i}",
            metadata={**V2_FIELDS, "source": f"doc{i}", "file_hash": "h", "added_at": 0, "i": i},
        )
        for i in range(n)
    ]


def ids(n: int) -> list[str]:
    return [f"id{i}" for i in range(n)]


async def seed(store: Milvus, n: int) -> None:
    for start in range(0, n, 500):
        chunk = list(range(start, min(n, start + 500)))
        await store.aadd_documents(
            docs(n)[start : start + len(chunk)], ids=[f"id{i}" for i in chunk]
        )
    await store.aclient.flush(store.collection_name)


async def bench_add(store: Milvus, n: int) -> dict[str, float]:
    # The first insert creates the collection: do it before timing.
    await store.aadd_documents(docs(1, "warm-up"), ids=["warm"])
    with Timer() as sync:
        for i, doc in enumerate(docs(n)):
            store.add_documents([doc], ids=[f"s{i}"])
    with Timer() as asyn:
        await asyncio.gather(
            *(store.aadd_documents([doc], ids=[f"a{i}"]) for i, doc in enumerate(docs(n)))
        )
    with Timer() as limit:
        await store.aadd_documents(docs(n), ids=[f"l{i}" for i in range(n)])
    return {"sync": sync.seconds, "async": asyn.seconds, "limit": limit.seconds}


async def bench_search(store: Milvus, n: int, embeddings: Embeddings) -> dict[str, float]:
    await seed(store, SEARCH_CORPUS)
    queries = [f"test document {i % 50}" for i in range(n)]
    with Timer() as sync:
        for q in queries:
            store.similarity_search(q, k=3)
    with Timer() as asyn:
        await asyncio.gather(*(store.asimilarity_search(q, k=3) for q in queries))
    lone = await lone_search_ms(store)
    with Timer() as limit:
        vectors = await embeddings.aembed_documents(queries)
        await store.aclient.search(
            store.collection_name,
            data=vectors,
            anns_field="vector",
            search_params=store.search_params,
            limit=3,
            output_fields=["text"],
        )
    return {"sync": sync.seconds, "async": asyn.seconds, "limit": limit.seconds, "lone": lone}


async def lone_search_ms(store: Milvus, repeats: int = 30) -> float:
    """Median latency of one search with nothing else running (coalescing must not hurt)."""
    timings = []
    for i in range(repeats):
        with Timer() as one:
            await store.asimilarity_search(f"test document {i % 50}", k=3)
        timings.append(one.seconds * 1000)
    return statistics.median(timings)


async def bench_delete(store: Milvus, n: int, templating: bool) -> dict[str, float]:
    await seed(store, 3 * n)
    with Timer() as sync:
        for i in range(n):
            store.delete(expr=f'pk == "id{i}"')
    with Timer() as asyn:
        await asyncio.gather(*(store.adelete(expr=f'pk == "id{i}"') for i in range(n, 2 * n)))
    targets = [f"id{i}" for i in range(2 * n, 3 * n)]
    with Timer() as limit:
        if templating:
            await store.adelete(expr="pk in {ids}", filter_params={"ids": targets})
        else:  # Milvus Lite takes no templates: the list as one literal
            await store.adelete(expr=f"pk in {targets!r}".replace("'", '"'))
    return {"sync": sync.seconds, "async": asyn.seconds, "limit": limit.seconds}


async def run(
    settings: Settings, ops: list[int], stacks: list[str], lone: dict[str, float]
) -> list[list[Any]]:
    embeddings = _base_embeddings(settings)
    embeddings.embed_documents(["warm up the model"])
    rows: list[list[Any]] = []
    for n in ops:
        for op in ("add", "search", "delete"):
            for kind in stacks:
                store = await asyncio.to_thread(make_store, kind, settings, embeddings)
                version = str(await store.aclient.get_server_version())
                if op == "add":
                    result = await bench_add(store, n)
                elif op == "search":
                    result = await bench_search(store, n, store.embeddings)  # type: ignore[arg-type]
                else:
                    templating = capabilities_for(version).filter_templates
                    result = await bench_delete(store, n, templating)
                if "lone" in result:
                    lone[kind] = result["lone"]
                await asyncio.to_thread(store.client.drop_collection, store.collection_name)
                rows.append(
                    [
                        op,
                        n,
                        kind,
                        f"{result['sync']:.3f}",
                        f"{result['async']:.3f}",
                        f"{result['sync'] / result['async']:.1f}x",
                        f"{result['limit']:.3f}",
                        f"{result['async'] / result['limit']:.1f}x",
                    ]
                )
                print(" | ".join(str(c) for c in rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="a Milvus server (default: Milvus Lite in a temp dir)")
    parser.add_argument("--start-server", action="store_true", help="start a Milvus 2.3.5")
    parser.add_argument("--ops", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--stacks", nargs="+", default=["plain", "app"], choices=["plain", "app"])
    args = parser.parse_args()
    with backend(args) as uri, scratch("bench-lite-") as lite_dir:
        settings = bench_settings(uri, lite_dir)
        lone: dict[str, float] = {}
        rows = asyncio.run(run(settings, args.ops, args.stacks, lone))
        label = uri or f"Milvus Lite ({settings.milvus_lite_path})"
    print()
    print(f"`{command_line()}` against {label}")
    print(versions())
    print()
    print(
        table(
            ["op", "n", "stack", "sync s", "async s", "sync/async", "limit s", "async/limit"], rows
        )
    )
    print()
    medians = ", ".join(f"{kind} {ms:.1f} ms" for kind, ms in lone.items())
    print(f"A lone search (median of 30, nothing else running): {medians}")


if __name__ == "__main__":
    main()
