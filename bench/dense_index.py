"""HNSW against an exact (FLAT) index for scoped dense search on Milvus Lite.

    python -m bench.dense_index                      # 2,000, 10,000 and 50,000 chunks
    python -m bench.dense_index --sizes 2000 --queries 100

Every search the app makes is filtered to what one user may see: the shared library and
the user's own uploads, or only the user's (a chat's uploads, a `/docs` source). This
builds a schema-v2 collection (the app's `create_collection`) with each index, holding
clustered unit vectors (384-d, like all-MiniLM-L6-v2's) of which half belong to the
library and the rest to 200 users, and asks scoped top-4 questions:

- recall: the share of the exact top 4 (NumPy over the same rows) that the search
  returned, for a user's own rows only (about 0.25% of the collection) and for the
  library plus the user's rows;
- latency: one question per call, and 50 questions in one call (what the app's
  coalescing sends for 50 users asking at once), median ms per call.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from pymilvus import MilvusClient

from bench.common import Timer, command_line, scratch, table, versions
from core.knowledge import LIBRARY_OWNER
from core.store.connection import capabilities_for
from core.store.filters import MilvusFilter
from core.store.schema import FLAT, HNSW, VECTOR_FIELD, DenseIndex, create_collection

DIM = 384
USERS = 200
CLUSTERS = 64
K = 4
BATCH = 50


@dataclasses.dataclass
class Corpus:
    vectors: np.ndarray
    owners: list[str]
    questions: np.ndarray
    askers: list[str]


def make_corpus(size: int, questions: int, seed: int = 7) -> Corpus:
    """Clustered unit vectors: embeddings of real text sit in topics, not uniformly."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, DIM))

    def around(n: int) -> np.ndarray:
        points = centres[rng.integers(CLUSTERS, size=n)] + rng.normal(scale=0.6, size=(n, DIM))
        unit: np.ndarray = points / np.linalg.norm(points, axis=1, keepdims=True)
        return unit.astype(np.float32)

    owners = [LIBRARY_OWNER if i % 2 == 0 else f"user-{rng.integers(USERS)}" for i in range(size)]
    askers = [f"user-{rng.integers(USERS)}" for _ in range(questions)]
    return Corpus(around(size), owners, around(questions), askers)


def load(client: MilvusClient, name: str, index: DenseIndex, corpus: Corpus) -> None:
    lite = capabilities_for(str(client.get_server_version()))
    capabilities = dataclasses.replace(lite, filtered_ann=index is HNSW)
    create_collection(client, name, model="bench", dim=DIM, capabilities=capabilities, timeout=60)
    rows = [
        {
            "pk": f"c{i}",
            "text": f"chunk {i}",
            VECTOR_FIELD: corpus.vectors[i].tolist(),
            "source": f"doc-{i // 20}",
            "owner": owner,
            "chat_id": "",
            "file_hash": "h",
            "page": 0,
            "chunk": i % 20,
            "chunks": 20,
            "added_at": 0,
        }
        for i, owner in enumerate(corpus.owners)
    ]
    for start in range(0, len(rows), 5000):
        client.insert(name, rows[start : start + 5000])
    client.flush(name)
    # Milvus Lite indexes flushed segments on a background thread, and a load meanwhile
    # can read an index file half written: let it finish, then load, which indexes any
    # segment still without an index before the first search.
    time.sleep(2 + len(rows) / 5000)
    client.release_collection(name)
    client.load_collection(name)


def scope_filter(owners: tuple[str, ...]) -> str:
    return MilvusFilter.one_of("owner", list(owners)).render()


def exact(corpus: Corpus, q: int, owners: tuple[str, ...]) -> set[str]:
    allowed = np.flatnonzero([o in owners for o in corpus.owners])
    scores = corpus.vectors[allowed] @ corpus.questions[q]
    return {f"c{allowed[i]}" for i in np.argsort(-scores)[:K]}


def measure(client: MilvusClient, name: str, index: DenseIndex, corpus: Corpus) -> list[Any]:
    def ask(vectors: np.ndarray, owners: tuple[str, ...]) -> list[set[str]]:
        found = client.search(
            name,
            vectors.tolist(),
            limit=K,
            filter=scope_filter(owners),
            anns_field=VECTOR_FIELD,
            search_params=index.search,
            output_fields=["pk"],
        )
        return [{str(hit["pk"]) for hit in hits} for hits in found]

    def recall(scope: Callable[[str], tuple[str, ...]]) -> float:
        got = []
        for q, asker in enumerate(corpus.askers):
            owners = scope(asker)
            truth = exact(corpus, q, owners)
            (found,) = ask(corpus.questions[q : q + 1], owners)
            got.append(len(found & truth) / max(1, len(truth)))
        return statistics.mean(got)

    def own(asker: str) -> tuple[str, ...]:
        return (asker,)

    def with_library(asker: str) -> tuple[str, ...]:
        return (LIBRARY_OWNER, asker)

    singles = []
    for q, asker in enumerate(corpus.askers):
        with Timer() as timer:
            ask(corpus.questions[q : q + 1], with_library(asker))
        singles.append(timer.seconds)
    batches = []
    for start in range(0, len(corpus.askers) - BATCH + 1, BATCH):
        owners = (LIBRARY_OWNER, *corpus.askers[start : start + BATCH])
        with Timer() as timer:
            ask(corpus.questions[start : start + BATCH], owners)
        batches.append(timer.seconds)
    return [
        len(corpus.owners),
        index.index_type,
        f"{recall(own):.1%}",
        f"{recall(with_library):.1%}",
        f"{statistics.median(singles) * 1000:.1f}",
        f"{statistics.median(batches) * 1000:.1f}" if batches else "-",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 50000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rows = []
    with scratch("bench-dense-index-") as folder:
        client = MilvusClient(str(folder / "milvus.db"))
        try:
            for size in args.sizes:
                corpus = make_corpus(size, args.queries)
                for index in (HNSW, FLAT):
                    name = f"bench_{index.index_type.lower()}_{size}"
                    load(client, name, index, corpus)
                    rows.append(measure(client, name, index, corpus))
                    client.drop_collection(name)
                    print(table(HEADERS, rows[-1:]).splitlines()[-1], flush=True)
        finally:
            client.close()
    print(f"\n`{command_line()}` ({versions()}; {args.queries} questions, top {K})\n")
    print(table(HEADERS, rows))


HEADERS = [
    "chunks",
    "index",
    "recall, own rows only",
    "recall, library + own",
    "ms, 1 question",
    f"ms, {BATCH} questions in one call",
]

if __name__ == "__main__":
    main()
