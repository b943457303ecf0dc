"""Ingest throughput (chunks per second) beside its ceiling, batched embedding alone.

python -m bench.ingest_throughput [--mb 3] [--uri http://...]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bench.common import Timer, bench_settings, command_line, scratch, table, versions
from bench.corpus import generate
from core.knowledge import LIBRARY_OWNER, DocumentKey
from core.resources import opened
from core.settings import Settings
from ingest.chunking import Origin, split_pages
from ingest.loaders import load_bytes
from ingest.pipeline import IngestOptions, Ingestor


def chunk_texts(files: list[Path], settings: Settings) -> list[str]:
    texts = []
    for path in files:
        loaded = load_bytes(path.read_bytes(), path.name)
        chunks = split_pages(
            loaded.pages,
            kind=loaded.kind,
            origin=Origin(DocumentKey(LIBRARY_OWNER, path.name), added_at=0),
            file_hash="x",
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
        )
        texts += [c.text for c in chunks]
    return texts


async def run(settings: Settings, files: list[Path]) -> list[list[str]]:
    async with opened(settings, collection="bench_ingest", drop=True, bulk_load=True) as resources:
        embeddings = resources.embeddings
        embeddings.embed_documents(["warm up"])
        texts = chunk_texts(files, settings)
        size = settings.ingest_batch_size
        with Timer() as ceiling:
            for start in range(0, len(texts), size):
                embeddings.embed_documents(texts[start : start + size])
        ingestor = Ingestor(resources.kb, IngestOptions.from_settings(settings))
        with Timer() as ingest:
            outcomes = await ingestor.ingest_many([(p, p.name) for p in files])
    chunks = sum(o.chunks for o in outcomes)
    assert chunks == len(texts) and all(o.ok for o in outcomes)
    megabytes = sum(p.stat().st_size for p in files) / 1048576
    ingest_rate, ceiling_rate = chunks / ingest.seconds, len(texts) / ceiling.seconds
    return [
        [
            "embedding only (ceiling)",
            f"{megabytes:.1f}",
            str(len(texts)),
            f"{ceiling.seconds:.1f}",
            f"{ceiling_rate:.0f}",
            "100%",
        ],
        [
            "python -m ingest pipeline",
            f"{megabytes:.1f}",
            str(chunks),
            f"{ingest.seconds:.1f}",
            f"{ingest_rate:.0f}",
            f"{100 * ingest_rate / ceiling_rate:.0f}%",
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=3.0, help="corpus size (default 3 MB)")
    parser.add_argument("--uri", help="a Milvus server (default: Milvus Lite in a temp dir)")
    args = parser.parse_args()
    with scratch("bench-ingest-") as folder:
        settings = bench_settings(args.uri, folder)
        files = generate(folder / "corpus", args.mb)
        rows = asyncio.run(run(settings, files))
    print(
        f"`{command_line()}` against {args.uri or 'Milvus Lite'}; chunk size "
        f"{settings.chunk_size}, batch {settings.ingest_batch_size}, concurrency "
        f"{settings.ingest_concurrency}"
    )
    print(versions())
    print()
    print(table(["what", "MB", "chunks", "seconds", "chunks/s", "of ceiling"], rows))


if __name__ == "__main__":
    main()
