"""Decompression bombs and runaway files are refused quickly, in bounded memory, with the
reason in the upload report.

The bombs are built here. Each is parsed in a fresh Python process (a memory cap keeps a
regression from taking the machine down) that reports its own time and peak memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import UnreadableFile
from ingest.limits import MIB, ParseLimits, check_chunk_estimate
from ingest.loaders import load_bytes
from ingest.pipeline import IngestOptions, Ingestor
from ingest.sandbox import parse_bounded
from tests.fakes import InMemoryKnowledgeBase
from tests.samples import docx_bomb, docx_bytes, pdf_bytes, shared_stream_pdf, write

ROOT = Path(__file__).resolve().parents[2]
# What parsing a bomb in the measuring process may cost (its own imports take ~60 MB).
PEAK_MB = 300
SECONDS = 10

_MEASURE = textwrap.dedent(
    """
    import json, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3,) * 2)  # a regression fails, not swaps
    from ingest.loaders import load_bytes
    path, name = sys.argv[1], sys.argv[2]
    data = open(path, "rb").read()
    start = time.perf_counter()
    try:
        load_bytes(data, name)
        reason = None
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
    # VmHWM, not getrusage: after fork + exec, ru_maxrss still counts the (large) pytest
    # process this one was forked from.
    status = open("/proc/self/status").read().splitlines()
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({
        "reason": reason,
        "seconds": time.perf_counter() - start,
        "peak_mb": peak_kb / 1024,
    }))
    """
)


def measure_parse(path: Path, name: str) -> dict[str, object]:
    """Parse `path` as `name` in a fresh process; its refusal, seconds and peak memory."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_docx_bomb_is_refused_before_it_inflates(tmp_path: Path) -> None:
    bomb = docx_bomb(tmp_path / "bomb.docx")
    assert bomb.stat().st_size < 400 * 1024  # ~261 KB that would inflate to 256 MiB
    result = measure_parse(bomb, "report.docx")
    assert "UnreadableFile" in str(result["reason"])
    assert "word/document.xml" in str(result["reason"])
    assert "decompression bomb" in str(result["reason"])
    assert float(str(result["seconds"])) < SECONDS, result
    assert float(str(result["peak_mb"])) < PEAK_MB, result


def test_pdf_pages_sharing_one_huge_stream_are_refused_quickly(tmp_path: Path) -> None:
    data = shared_stream_pdf(pages=18)
    assert len(data) < 32 * 1024  # ~18 KB whose pages each draw 5 MB
    result = measure_parse(write(tmp_path / "bomb.pdf", data), "slides.pdf")
    assert "page 1's drawing instructions decompress to 4.8 MB" in str(result["reason"])
    assert float(str(result["seconds"])) < SECONDS, result
    assert float(str(result["peak_mb"])) < PEAK_MB, result


def test_pdf_text_is_counted_while_it_is_extracted() -> None:
    # Streams under the size limit, but each page draws far more text than a page holds:
    # extraction stops at the per-page limit instead of producing 15 M characters.
    data = shared_stream_pdf(pages=20, stream_bytes=1_000_000)
    with pytest.raises(UnreadableFile, match="page 1 holds over 100,000 characters"):
        load_bytes(data, "bomb.pdf")
    # A file whose pages are each fine but too many together hits the document limit.
    limits = replace(ParseLimits(), max_page_chars=10**9, max_document_chars=300_000)
    with pytest.raises(UnreadableFile, match="over 300,000 characters, the limit per document"):
        load_bytes(data, "bomb.pdf", limits)


def test_one_huge_line_of_text_is_refused_by_its_size() -> None:
    line = b"x" * 2_500_000  # no line breaks at all
    with pytest.raises(UnreadableFile, match="limit per document"):
        load_bytes(line, "line.txt")


def test_chunks_per_document_are_capped_before_splitting() -> None:
    check_chunk_estimate(85_000, 1000, 150, max_chunks=100)
    with pytest.raises(UnreadableFile, match="1,176 chunks, over the limit of 100"):
        check_chunk_estimate(1_000_000, 1000, 150, max_chunks=100)


def test_ordinary_files_pass_the_limits() -> None:
    assert load_bytes(docx_bytes(["Hello " * 2000]), "a.docx").pages
    assert len(load_bytes(pdf_bytes(["one", "two"]), "a.pdf").pages) == 2


async def test_pipeline_reports_each_refusal_with_its_reason(tmp_path: Path) -> None:
    kb = InMemoryKnowledgeBase()
    options = IngestOptions(chunk_size=200, chunk_overlap=20, batch_size=8)
    ingestor = Ingestor(kb, replace(options, limits=replace(options.limits, max_chunks=20)))
    files = [
        (docx_bomb(tmp_path / "b.docx", inflated_bytes=64 * MIB), "bomb.docx"),
        (write(tmp_path / "b.pdf", shared_stream_pdf(pages=18)), "bomb.pdf"),
        (write(tmp_path / "long.txt", "word " * 2000), "long.txt"),
        (write(tmp_path / "ok.txt", "A short note about tea."), "ok.txt"),
    ]
    outcomes = {o.source: o for o in await ingestor.ingest_many(files)}
    assert "decompression bomb" in str(outcomes["bomb.docx"].reason)
    assert "drawing instructions" in str(outcomes["bomb.pdf"].reason)
    assert "over the limit of 20 per document" in str(outcomes["long.txt"].reason)
    assert outcomes["ok.txt"].status == "added"
    assert {c.document.source for c, _ in kb.chunks.values()} == {"ok.txt"}


# The size checks opened wide: what is left to stop a bomb is the worker's own limits.
WIDE_OPEN = ParseLimits(
    max_page_chars=10**9,
    max_document_chars=10**9,
    max_pdf_page_content_bytes=10**9,
    max_pdf_content_bytes=10**9,
)


def test_worker_process_enforces_the_cpu_budget() -> None:
    with pytest.raises(UnreadableFile, match="took longer than its time budget"):
        parse_bounded(shared_stream_pdf(pages=18), "bomb.pdf", replace(WIDE_OPEN, cpu_seconds=1))


def test_worker_process_enforces_the_memory_cap() -> None:
    limits = replace(WIDE_OPEN, memory_bytes=64 * MIB)
    with pytest.raises(UnreadableFile, match="more than 64 MB of memory"):
        parse_bounded(shared_stream_pdf(pages=2, stream_bytes=20_000_000), "bomb.pdf", limits)


def test_worker_process_returns_the_parsed_pages() -> None:
    loaded = parse_bounded(pdf_bytes(["First", "Second"]), "a.pdf", ParseLimits())
    assert [p.page_content for p in loaded.pages] == ["First", "Second"]
