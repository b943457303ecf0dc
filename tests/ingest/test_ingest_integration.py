"""`python -m ingest` end to end: real Milvus Lite, the real local embedding model."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

from core.knowledge import LIBRARY_OWNER, AccessScope, SearchRequest
from core.settings import Settings
from core.store import MilvusKnowledgeBase
from core.store.connection import connection_args
from ingest.cli import EXIT_ERROR, EXIT_FILES_FAILED, EXIT_OK, main
from tests.samples import BINARY_BYTES, CORRUPT_PDF, docx_bytes, pdf_bytes, write

pytestmark = pytest.mark.integration

GOOD = {
    "guide.md": "# Vector databases\n\nMilvus stores embeddings and answers nearest neighbour "
    "queries with HNSW indexes.\n",
    "notes/fruit.txt": "Bananas are yellow and rich in potassium. Apples can be red or green.",
    "page.html": "<html><head><title>Cats</title></head><body><p>Cats sleep sixteen hours "
    "a day.</p><script>evil()</script></body></html>",
}


def make_corpus(root: Path) -> None:
    for name, text in GOOD.items():
        write(root / name, text)
    write(
        root / "report.pdf",
        pdf_bytes(["The quarterly revenue grew by 12 percent.", "Headcount stayed at 42 people."]),
    )
    write(root / "memo.docx", docx_bytes(["The office moves to Lisbon in March."]))
    write(root / "logo.png", b"\x89PNG\r\n")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MILVUS_LITE_PATH", str(tmp_path / "kb.db"))
    monkeypatch.setenv("MILVUS_COLLECTION", "it_docs")
    monkeypatch.setenv("EMBEDDINGS", "local")
    return Settings(_env_file=None)


def ingest(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(args), out=out)
    return code, out.getvalue()


def stored_rows(settings: Settings) -> list[dict[str, Any]]:
    """The stored rows as Milvus holds them (read with pymilvus directly)."""
    from pymilvus import MilvusClient

    client = MilvusClient(**connection_args(settings))
    try:
        return list(
            client.query(
                settings.milvus_collection,
                filter="",
                output_fields=["source", "owner", "page", "chunk", "chunks", "file_hash"],
                limit=1000,
                consistency_level="Strong",
            )
        )
    finally:
        client.close()


def test_folder_of_mixed_files(env: Settings, tmp_path: Path, local_embeddings: Embeddings) -> None:
    make_corpus(tmp_path / "corpus")
    code, out = ingest(str(tmp_path / "corpus"))
    assert code == EXIT_OK, out
    assert "skipped  logo.png: unsupported type '.png'" in out
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith("Ingested 5 files (6 chunks written), 0 unchanged, 1 skipped, 0 failed in ")
    )
    rows = stored_rows(env)
    by_source: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    assert set(by_source) == {"guide.md", "notes/fruit.txt", "page.html", "report.pdf", "memo.docx"}
    assert sorted(r["page"] for r in by_source["report.pdf"]) == [1, 2]
    assert all(r["page"] == 0 for r in by_source["guide.md"])  # 0: no page
    assert all(len(str(r["file_hash"])) == 64 for r in rows)
    assert {r["owner"] for r in rows} == {LIBRARY_OWNER}  # the CLI fills the shared library

    async def search() -> str:
        kb = await MilvusKnowledgeBase.open(env, local_embeddings)
        try:
            question = "Where is the office moving?"
            hits = await kb.search(
                SearchRequest(question, AccessScope.everything(), "dense", 1, 1, 0.5)
            )
        finally:
            await kb.close()
        return hits[0].source

    assert asyncio.run(search()) == "memo.docx"


def test_reingest_unchanged_then_changed(env: Settings, tmp_path: Path) -> None:
    make_corpus(tmp_path / "corpus")
    assert ingest(str(tmp_path / "corpus"))[0] == EXIT_OK
    before = stored_rows(env)

    code, out = ingest(str(tmp_path / "corpus"))
    assert code == EXIT_OK
    assert "Ingested 0 files (0 chunks written), 5 unchanged" in out
    assert sorted(r["file_hash"] for r in stored_rows(env)) == sorted(
        r["file_hash"] for r in before
    )

    write(tmp_path / "corpus" / "notes" / "fruit.txt", "Cherries are small and red.")
    code, out = ingest(str(tmp_path / "corpus"))
    assert "Ingested 1 files (1 chunks written), 4 unchanged" in out
    fruit = [r for r in stored_rows(env) if r["source"] == "notes/fruit.txt"]
    assert len(fruit) == 1
    assert fruit[0]["file_hash"] not in {r["file_hash"] for r in before}


def test_bad_files_among_good_ones(env: Settings, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    write(corpus / "broken.pdf", CORRUPT_PDF)
    write(corpus / "empty.txt", b"")
    write(corpus / "garbage.txt", BINARY_BYTES)
    code, out = ingest(str(corpus))
    assert code == EXIT_FILES_FAILED
    assert "failed   broken.pdf: corrupt PDF" in out
    assert "failed   empty.txt: the file is empty (0 bytes)" in out
    assert "failed   garbage.txt: binary data" in out
    assert ", 1 skipped, 3 failed in " in out
    sources = {r["source"] for r in stored_rows(env)}
    assert sources == {"guide.md", "notes/fruit.txt", "page.html", "report.pdf", "memo.docx"}


def test_drop_and_if_empty(env: Settings, tmp_path: Path) -> None:
    write(tmp_path / "one" / "a.txt", "first corpus")
    write(tmp_path / "two" / "b.txt", "second corpus")
    assert ingest(str(tmp_path / "one"))[0] == EXIT_OK
    code, out = ingest(str(tmp_path / "two"), "--if-empty")
    assert code == EXIT_OK and "already holds 1 chunks; nothing ingested" in out
    code, out = ingest(str(tmp_path / "two"), "--drop")
    assert "Ingested 1 files (1 chunks written)" in out


def test_wrong_embedding_dimension_is_a_clear_error(
    env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    async def build_with_fake() -> None:
        kb = await MilvusKnowledgeBase.open(env, DeterministicFakeEmbedding(size=8))
        await kb.close()

    asyncio.run(build_with_fake())
    write(tmp_path / "a.txt", "text")
    assert ingest(str(tmp_path / "a.txt"))[0] == EXIT_ERROR
    err = capsys.readouterr().err
    assert "holds 8-dimensional vectors" in err and "makes 384-dimensional ones" in err
    assert "--drop" in err


def test_locked_lite_directory_says_what_to_do(
    env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pymilvus import MilvusClient\n"
            f"MilvusClient(uri={str(env.milvus_lite_path)!r})\nprint('ready', flush=True)\n"
            "time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        write(tmp_path / "a.txt", "text")
        assert ingest(str(tmp_path / "a.txt"))[0] == EXIT_ERROR
        err = capsys.readouterr().err
        assert "in use by another process" in err
        assert "milvus-lite server --data-dir" in err and "--host 127.0.0.1" in err
        assert "Traceback" not in err
    finally:
        holder.kill()
        holder.wait()


def _paragraph(seed: int, quota: int) -> str:
    """About 700 characters of distinct filler words with `quota` mentions of "quota"."""
    words = [f"w{seed}x{n}" for n in range(110)]
    return " ".join(["quota"] * quota + words)


def test_keyword_search_scores_a_folder_as_one_corpus(
    env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_embeddings: Embeddings
) -> None:
    """Milvus Lite scores BM25 with each segment's own statistics. The CLI used to flush
    every document as it committed it, so each file had a segment of its own: in
    `spread.txt`, where every paragraph says "quota" twice, the word was common (scored
    near zero), while `rare.txt`'s one mention counted in full. Scored as one corpus, the
    paragraphs that say it twice come first."""
    monkeypatch.setenv("INGEST_CONCURRENCY", "1")  # one file after the other
    corpus = tmp_path / "corpus"
    write(corpus / "a_spread.txt", "\n\n".join(_paragraph(n, quota=2) for n in range(4)))
    write(
        corpus / "b_rare.txt",
        "\n\n".join(_paragraph(10 + n, quota=1 if n == 0 else 0) for n in range(4)),
    )
    code, out = ingest(str(corpus))
    assert "Ingested 2 files (8 chunks written)" in out, out

    async def keyword_sources() -> list[str]:
        kb = await MilvusKnowledgeBase.open(env, local_embeddings)
        try:
            request = SearchRequest("quota", AccessScope.everything(), "keyword", 5, 5, 0.5)
            return [hit.source for hit in await kb.search(request)]
        finally:
            await kb.close()

    assert asyncio.run(keyword_sources()) == ["a_spread.txt"] * 4 + ["b_rare.txt"]


@pytest.mark.server
def test_ingest_into_a_milvus_server(
    milvus_server_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MILVUS_URI", milvus_server_uri)
    monkeypatch.setenv("MILVUS_COLLECTION", "server_docs")
    monkeypatch.setenv("EMBEDDINGS", "local")
    make_corpus(tmp_path / "corpus")
    code, out = ingest(str(tmp_path / "corpus"), "--drop")
    assert code == EXIT_OK, out
    assert "Ingested 5 files (6 chunks written)" in out
    settings = Settings(_env_file=None)
    assert len(stored_rows(settings)) == 6
    code, out = ingest(str(tmp_path / "corpus"))
    assert "Ingested 0 files (0 chunks written), 5 unchanged" in out


def test_reindex_rebuilds_stale_documents_and_names_the_rest(
    env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_embeddings: Embeddings
) -> None:
    from ingest import chunking
    from ingest.pipeline import Ingestor

    make_corpus(tmp_path / "corpus")
    write(tmp_path / "upload.md", "# Notes\n\nAda's own notes about lemons.")
    with monkeypatch.context() as old:  # what an earlier chunker made
        old.setattr(chunking, "CHUNKER", "sections-0")
        assert ingest(str(tmp_path / "corpus"))[0] == EXIT_OK

        async def upload() -> None:
            kb = await MilvusKnowledgeBase.open(env, local_embeddings)
            try:
                outcome = await Ingestor(kb).ingest_file(
                    tmp_path / "upload.md", "notes.md", owner="ada"
                )
                assert outcome.status == "added"
                await kb.flush()
            finally:
                await kb.close()

        asyncio.run(upload())
    stale_rows = stored_rows(env)

    code, out = ingest("--reindex")  # no PATH: only the report
    assert code == EXIT_FILES_FAILED
    assert "6 documents in 'it_docs' were made by an older extractor or chunker" in out
    assert "  library  page.html: ingest its file again" in out
    assert "  ada      notes.md: an upload; ada should upload it again" in out

    code, out = ingest("--reindex", str(tmp_path / "corpus"))
    assert code == EXIT_FILES_FAILED, out  # ada's upload is still to be rebuilt
    assert "Ingested 5 files (6 chunks written), 0 unchanged" in out
    assert "1 document in 'it_docs' was made by an older extractor or chunker" in out
    rows = stored_rows(env)
    library = [r for r in rows if r["owner"] == LIBRARY_OWNER]
    # each document's old chunks went once the new ones were in: one version per document
    assert len(library) == 6 and len({r["file_hash"] for r in library}) == 5
    assert not {r["file_hash"] for r in library} & {r["file_hash"] for r in stale_rows}

    code, out = ingest("--reindex", str(tmp_path / "corpus"))
    assert "Ingested 0 files (0 chunks written), 5 unchanged" in out
