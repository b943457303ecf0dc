"""`python -m ingest` killed with SIGKILL in the middle of a multi-batch document.

The old version stays what every search (all modes), listing and count sees while the
new one is half written, and after the kill; opening the knowledge base again (what the
app and the CLI do at start) sweeps the leftovers away; the re-run stores the new version
whole, once. Meanwhile a checker asks every ~200 ms and fails on any answer that mixes
versions or shows the unfinished one. The CLI and the test are separate processes
sharing one `milvus-lite server`, as the app and the CLI do."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from core.knowledge import LIBRARY_OWNER, AccessScope, DocumentKey, SearchMode, SearchRequest
from core.settings import Settings
from core.store import MilvusKnowledgeBase
from ingest.chunking import content_hash, ingest_version
from ingest.pipeline import IngestOptions
from tests.faults.checker import QuestionChecker
from tests.faults.conftest import LiteServer, server_settings

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "manual.txt"
DOC = DocumentKey(LIBRARY_OWNER, SOURCE)
EVERYTHING = AccessScope.everything()
MODES: tuple[SearchMode, ...] = ("dense", "hybrid", "keyword", "mmr")


def manual(version: str, paragraphs: int) -> str:
    return "\n\n".join(
        f"Section {i} of the {version} manual. The pump model {version}-{i} runs at "
        f"{i * 7 % 90 + 10} litres a minute and needs service every {i % 12 + 1} months."
        for i in range(paragraphs)
    )


def cli(settings: Settings, path: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MILVUS_"))}
    env.update(
        {
            "MILVUS_URI": str(settings.milvus_uri),
            "MILVUS_COLLECTION": settings.milvus_collection,
            "EMBEDDINGS": "local",
            "HF_HUB_OFFLINE": "1",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", str(path), "--batch-size", "2", "--concurrency", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def finished(process: subprocess.Popen[str], patience: float) -> tuple[int, str]:
    """The CLI's exit code and output, waited for off the event loop: the checker keeps
    asking meanwhile (a blocking `wait` froze it, and the question in flight then
    finished after the test had moved on)."""
    output, _ = await asyncio.to_thread(process.communicate, timeout=patience)
    return process.returncode, output


async def visible(kb: MilvusKnowledgeBase, question: str = "pump model service") -> set[str]:
    """The versions of the manual any mode of search shows."""
    found: set[str] = set()
    for mode in MODES:
        request = SearchRequest(question, EVERYTHING, mode, k=10, fetch_k=20, lambda_mult=0.5)
        found |= {h.file_hash for h in await kb.search(request) if h.source == SOURCE}
    return found


@pytest.mark.integration
async def test_a_killed_ingest_never_shows_a_partial_document(
    tmp_path: Path, lite_server: LiteServer, local_embeddings: Embeddings
) -> None:
    settings = server_settings(tmp_path, lite_server.uri, embeddings="local")
    path = tmp_path / SOURCE
    path.write_text(manual("old", 20))
    code, output = await finished(cli(settings, path), 120)
    assert code == 0, output
    defaults = IngestOptions()  # what the CLI chunks with
    version = ingest_version(defaults.chunk_size, defaults.chunk_overlap)
    old = content_hash(path.read_bytes(), version)
    new = content_hash(manual("new", 160).encode(), version)
    kb = await MilvusKnowledgeBase.open(settings, local_embeddings)
    (old_version,) = await kb.stored_versions(DOC)
    committed = {old}

    async def ask() -> str:
        """One question; fails on a mix of versions or one not committed at any moment
        while it was asked."""
        allowed = set(committed)
        request = SearchRequest(
            "pump model", EVERYTHING, "hybrid", k=8, fetch_k=20, lambda_mult=0.5
        )
        hashes = {h.file_hash for h in await kb.search(request) if h.source == SOURCE}
        assert len(hashes) == 1 and hashes <= allowed | committed, f"saw versions {hashes}"
        return "ok"

    async with QuestionChecker(ask) as checker:
        await checker.wait_for_successes(3)
        path.write_text(manual("new", 160))  # 160 paragraphs: about 80 insert batches
        second = cli(settings, path)
        partial = 0
        deadline = time.monotonic() + 120
        while partial == 0 and time.monotonic() < deadline:
            versions = await kb.stored_versions(DOC)
            partial = next((v.stored for v in versions if v.file_hash == new), 0)
            await asyncio.sleep(0.01)
        os.kill(second.pid, signal.SIGKILL)
        await finished(second, 30)
        (pending,) = [v for v in await kb.stored_versions(DOC) if v.file_hash == new]
        assert not pending.committed and 0 < pending.stored < pending.declared

        # The old version, whole, is all anyone sees.
        assert await visible(kb) == {old}
        assert await kb.count(EVERYTHING) == old_version.stored
        assert [(d.source, d.chunks) for d in await kb.list_documents(EVERYTHING)] == [
            (SOURCE, old_version.declared)
        ]

        # Opening the knowledge base (the app's or the CLI's start) sweeps the leftovers.
        reopened = await MilvusKnowledgeBase.open(settings, local_embeddings)
        await reopened.close()
        assert await kb.stored_versions(DOC) == [old_version]

        # The re-run stores the new version, whole and once; the old one goes.
        committed.add(new)
        rerun_started = checker.mark()
        code, output = await finished(cli(settings, path), 180)
        assert code == 0, output
        committed.discard(old)
        assert len(checker.between(rerun_started, checker.mark())) >= 3, "no questions meanwhile"
        await checker.wait_for_successes(3, since=checker.mark())
    assert all(o.ok for o in checker.outcomes), checker.describe(
        [o for o in checker.outcomes if not o.ok][:3]
    )
    (new_version,) = await kb.stored_versions(DOC)
    assert new_version.file_hash == new and new_version.complete and new_version.committed
    assert await kb.count(EVERYTHING) == new_version.declared
    assert await visible(kb) == {new}
    await kb.close()
