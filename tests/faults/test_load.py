"""The load test, bounded for CI: 50 users asking over the real socket protocol while
`python -m ingest` and two browser pages add documents (`tests.faults.load`; run that
module for the few-minute version)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from core.knowledge import DocumentKey
from tests.faults.load import (
    LoadConfig,
    document_problems,
    expected_ids,
    run_load,
    text_document,
)


@pytest.mark.e2e
async def test_fifty_users_asking_while_documents_are_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)  # `chainlit run` would read it as --ci
    config = LoadConfig(duration=30, users=50, browsers=2, uploaders=5)
    report = await run_load(config, tmp_path)
    problems = report.problems()
    assert problems == [], report.table() + "\n" + "\n".join(problems[:20])
    assert len(report.outcomes) >= config.users  # everyone asked, at least once
    assert len(report.socket_uploads) >= config.uploaders
    assert len(report.browser_uploads) >= config.browsers
    assert report.chunks > 0


def _rows(document: DocumentKey, data: bytes) -> list[dict[str, Any]]:
    """The rows an ingest of `data` stores for `document`."""
    file_hash, ids = expected_ids(document, data)
    return [
        {"pk": pk, "file_hash": file_hash, "chunk": n, "chunks": len(ids), "text": f"t{n}"}
        for n, pk in enumerate(ids)
    ]


def test_the_store_check_sees_partial_duplicated_stale_and_stray_documents() -> None:
    """The check the load test ends with fails on each way a document can go wrong."""
    document = DocumentKey("load-00", "a.txt")
    data = text_document(random.Random(1), "a.txt", 12)
    new = text_document(random.Random(2), "a.txt", 12)
    rows = _rows(document, data)
    assert len(rows) > 2
    assert document_problems(document, rows, data) == []
    partial = document_problems(document, rows[:-1], data)
    assert partial and "declared" in partial[0]
    twice = [*rows, {**rows[0], "pk": "other"}]
    assert any("chunks" in p for p in document_problems(document, twice, data))
    assert any("twice" in p for p in document_problems(document, twice, data))
    assert any("older version" in p for p in document_problems(document, rows, new))
    mixed = [*rows, *_rows(document, new)]
    assert "2 versions" in document_problems(document, mixed, new)[0]
    assert any("never ingested" in p for p in document_problems(document, rows, None))
