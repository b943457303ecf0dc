"""No password in a URI reaches a message, the terminal or the log; no internal address
reaches a chat user."""

from __future__ import annotations

import doctest
import logging
from pathlib import Path

import pytest

import core.redaction
from chains.errors import explain
from core.errors import STORE_UNREACHABLE, ConfigError, StoreUnavailable
from core.logs import configure_logging
from core.settings import load_settings
from core.store.connection import connect
from tests.conftest import free_port, make_settings


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(core.redaction).failed == 0


@pytest.mark.parametrize(
    "uri",
    [
        "http//root:s3cret-pw@milvus.internal:19530",  # missing colon
        "tcp://root:s3cret-pw@milvus.internal:19530",  # wrong scheme
        "root:s3cret-pw@milvus.internal",  # no scheme at all
    ],
)
def test_a_malformed_milvus_uri_is_echoed_without_its_password(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILVUS_URI", uri)
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None)
    assert "s3cret-pw" not in str(error.value)
    assert "root:***@milvus.internal" in str(error.value)  # still says which value


async def test_an_unreachable_store_tells_the_user_plainly_and_the_log_the_details(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    address = f"http://root:s3cret-pw@127.0.0.1:{free_port()}"
    settings = make_settings(tmp_path, milvus_uri=address, milvus_timeout=1)
    with pytest.raises(StoreUnavailable) as error:
        connect(settings)
    detail = str(error.value)
    assert "127.0.0.1" in detail and "s3cret-pw" not in detail  # for the operator
    assert str(explain(error.value, operator=True)) == detail
    with caplog.at_level(logging.WARNING):
        shown = str(explain(error.value))
    assert shown == STORE_UNREACHABLE  # for the chat: no address, no credentials
    assert "127.0.0.1" in caplog.text and "s3cret-pw" not in caplog.text


def test_log_lines_and_tracebacks_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        configure_logging()
        logger = logging.getLogger("test.redaction")
        try:
            raise ValueError("cannot open postgresql+asyncpg://app:hunter2@db/chat")
        except ValueError:
            logger.exception("failed with %s", "http://u:hunter2@h:1")
    finally:
        root.handlers = saved
    printed = capsys.readouterr().err
    assert "hunter2" not in printed
    assert "http://u:***@h:1" in printed and "app:***@db/chat" in printed
