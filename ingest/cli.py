"""`python -m ingest PATH [PATH ...]`: load files and folders into the knowledge base."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from core.errors import UserFacingError
from core.knowledge import AccessScope
from core.logs import configure_logging
from core.settings import Settings, load_settings
from ingest.chunking import ingest_version
from ingest.discovery import Discovered, discover
from ingest.pipeline import FileOutcome, Ingestor, ProgressEvent
from ingest.reindex import stale_documents, stale_report

EXIT_OK, EXIT_FILES_FAILED, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Load .txt, .md, .pdf, .html and .docx files into the Milvus knowledge base.",
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders")
    parser.add_argument("--collection", help="collection name (default: MILVUS_COLLECTION)")
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="copy a collection made by an earlier version (schema v1) into the current "
        "schema, keeping every vector; safe to run again",
    )
    parser.add_argument(
        "--drop-backup",
        action="store_true",
        help="with --migrate: drop the v1 copy a finished migration kept as NAME_v1_backup",
    )
    parser.add_argument(
        "--reindex",
        action="store_true",
        help="rebuild the documents under PATH made by an older extractor or chunker, then "
        "list those still to rebuild (uploads, files not given); without PATH, only list them",
    )
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
    reindex: bool = False,
) -> int:
    from core.resources import opened
    from ingest.pipeline import IngestOptions, Ingestor

    started = time.perf_counter()
    async with opened(settings, drop=drop, bulk_load=True) as resources:
        kb = resources.kb
        if if_empty and (chunks := await kb.count(AccessScope.everything())):
            print(
                f"Collection '{kb.name}' already holds {chunks} chunks; nothing ingested.", file=out
            )
            return EXIT_OK
        ingestor = Ingestor(kb, IngestOptions.from_settings(settings))
        outcomes = await _ingest_with_bars(ingestor, found) if found.files else []
        stale = await stale_documents(kb, _current_version(settings)) if reindex else []
    for outcome in outcomes:
        if outcome.status == "failed":
            print(f"failed   {outcome.source}: {outcome.reason}", file=out)
    for source, reason in found.skipped:
        print(f"skipped  {source}: {reason}", file=out)
    if found.files or found.skipped:
        print(summary_line(outcomes, len(found.skipped), time.perf_counter() - started), file=out)
    if reindex:
        print("\n".join(stale_report(stale, kb.name)), file=out)
    return EXIT_FILES_FAILED if stale or any(not o.ok for o in outcomes) else EXIT_OK


def _current_version(settings: Settings) -> str:
    return ingest_version(settings.chunk_size, settings.chunk_overlap)


async def _ingest_with_bars(ingestor: Ingestor, found: Discovered) -> list[FileOutcome]:
    """Ingest into the shared library with a files bar and a chunks bar."""
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
        return await ingestor.ingest_many(found.files, on_progress)
    finally:
        chunks_bar.close()
        files_bar.close()


async def migrate(settings: Settings, out: TextIO, *, drop_backup: bool) -> int:
    """`--migrate`: bring the collection to the current schema (see core.store.migration)."""
    from core.store.migration import drop_migration_backup, migrate_collection

    name = settings.milvus_collection
    if drop_backup:
        dropped = await drop_migration_backup(settings)
        print(f"Dropped '{dropped}'." if dropped else f"'{name}' has no v1 backup.", file=out)
        return EXIT_OK
    bar = tqdm(total=0, desc="chunks copied", unit="chunk")

    def on_progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        report = await migrate_collection(settings, on_progress=on_progress)
    finally:
        bar.close()
    if report.status == "already-current":
        print(
            f"Collection '{name}' already uses the current schema ({report.chunks} chunks).",
            file=out,
        )
        return EXIT_OK
    print(
        f"Migrated '{name}' to the current schema: {report.chunks} chunks, vectors kept.", file=out
    )
    if report.backup:
        print(
            f"The old collection is kept as '{report.backup}'. Once the app works, drop it "
            f"with: python -m ingest --migrate --drop-backup --collection {name}",
            file=out,
        )
    return EXIT_OK


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.migrate and not args.reindex and not args.paths:
        parser.error("give at least one PATH (or --migrate, or --reindex)")
    if args.drop_backup and not args.migrate:
        parser.error("--drop-backup goes with --migrate")
    configure_logging()
    try:
        settings = settings_from_args(args)  # before pymilvus is imported: see core/__init__
        if args.migrate:
            return asyncio.run(migrate(settings, out, drop_backup=args.drop_backup))
        found = discover(args.paths)
        if not found.files and not found.skipped and not args.reindex:
            print("Nothing to ingest.", file=out)
            return EXIT_OK
        return asyncio.run(
            run(
                settings,
                found,
                out,
                drop=args.drop,
                if_empty=args.if_empty,
                reindex=args.reindex,
            )
        )
    except UserFacingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
