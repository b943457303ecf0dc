"""The load test, bounded for CI: 50 users asking over the real socket protocol while
`python -m ingest` and two browser pages add documents (`tests.faults.load`; run that
module for the few-minute version)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.load import LoadConfig, run_load

pytestmark = pytest.mark.e2e


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
