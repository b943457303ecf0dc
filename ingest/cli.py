"""`python -m ingest PATH [PATH ...]`: load files and folders into the knowledge base."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from core.errors import UserFacingError
from core.settings import Settings, load_settings
from ingest.discovery import Discovered, discover
from ingest.pipeline import FileOutcome, ProgressEvent

EXIT_OK, EXIT_FILES_FAILED, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Load .txt, .md, .pdf, .html and .docx files into the Milvus knowledge base.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    parser.add_argument("--collection", help="collection name (default: MILVUS_COLLECTION)")
    parser.add_argument("--drop", action="store_true", help="drop the collection first")
    parser.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing when the collection already holds chunks (first-run seeding)",
    )
    parser.add_argument("--chunk-size", type=int, help="characters per chunk")
    parser.add_argument("--chunk-overlap", type=int, help="characters shared by neighbours")
    parser.add_argument("--batch-size", type=int, help="chunks per embedding + insert call")
    parser.add_argument("--concurrency", type=int, help="files and batches in flight at once")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {
        "milvus_collection": args.collection,
        "chunk_size": args.chunk_size,
        "chunk_overlap": args.chunk_overlap,
        "ingest_batch_size": args.batch_size,
        "ingest_concurrency": args.concurrency,
    }
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def summary_line(outcomes: list[FileOutcome], skipped: int, seconds: float) -> str:
    written = sum(o.chunks for o in outcomes if o.status in ("added", "replaced"))
    ingested = sum(1 for o in outcomes if o.status in ("added", "replaced"))
    unchanged = sum(1 for o in outcomes if o.status == "unchanged")
    failed = sum(1 for o in outcomes if o.status == "failed")
    return (
        f"Ingested {ingested} files ({written} chunks written), {unchanged} unchanged, "
        f"{skipped} skipped, {failed} failed in {seconds:.1f} s"
    )


async def run(
    settings: Settings,
    found: Discovered,
    out: TextIO,
    *,
    drop: bool = False,
    if_empty: bool = False,
) -> int:
    from core.providers import build_embeddings
    from core.store import KnowledgeBase
    from ingest.pipeline import IngestOptions, Ingestor

    started = time.perf_counter()
    embeddings = build_embeddings(settings)
    kb = await KnowledgeBase.open(settings, embeddings, drop=drop)
    if if_empty and (chunks := await kb.count()):
        print(
            f"Collection '{kb.collection}' already holds {chunks} chunks; nothing ingested.",
            file=out,
        )
        return EXIT_OK
    ingestor = Ingestor(kb, IngestOptions.from_settings(settings))

    files_bar = tqdm(total=len(found.files), desc="files", unit="file", position=0)
    chunks_bar = tqdm(total=0, desc="chunks", unit="chunk", position=1)
    stored: dict[str, int] = {}

    async def on_progress(event: ProgressEvent) -> None:
        if event.stage == "chunked":
            chunks_bar.total = (chunks_bar.total or 0) + event.chunks_total
            chunks_bar.refresh()
        elif event.stage == "stored":
            chunks_bar.update(event.chunks_done - stored.get(event.source, 0))
            stored[event.source] = event.chunks_done
        elif event.stage == "done":
            if event.source not in stored:  # unchanged: nothing to store, count it as done
                chunks_bar.update(event.chunks_total)
            files_bar.update(1)
        elif event.stage == "failed":
            files_bar.update(1)

    try:
        outcomes = await ingestor.ingest_many(found.files, on_progress)
    finally:
        chunks_bar.close()
        files_bar.close()
    for outcome in outcomes:
        if outcome.status == "failed":
            print(f"failed   {outcome.source}: {outcome.reason}", file=out)
    for source, reason in found.skipped:
        print(f"skipped  {source}: {reason}", file=out)
    print(summary_line(outcomes, len(found.skipped), time.perf_counter() - started), file=out)
    return EXIT_FILES_FAILED if any(not o.ok for o in outcomes) else EXIT_OK


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from_args(args)  # before pymilvus is imported: see core/__init__
        found = discover(args.paths)
        if not found.files and not found.skipped:
            print("Nothing to ingest.", file=out)
            return EXIT_OK
        return asyncio.run(run(settings, found, out, drop=args.drop, if_empty=args.if_empty))
    except UserFacingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
