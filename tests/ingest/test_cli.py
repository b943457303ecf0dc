import io
from pathlib import Path

import pytest

from ingest.cli import EXIT_ERROR, build_parser, main, settings_from_args, summary_line
from ingest.pipeline import FileOutcome
from tests.openai_standin import OpenAIStandIn


def test_arguments_override_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(
        [
            "docs",
            "more/x.pdf",
            "--collection",
            "kb2",
            "--drop",
            "--chunk-size",
            "500",
            "--chunk-overlap",
            "50",
            "--batch-size",
            "16",
            "--concurrency",
            "4",
        ]
    )
    assert args.paths == [Path("docs"), Path("more/x.pdf")]
    assert args.drop
    settings = settings_from_args(args)
    assert settings.milvus_collection == "kb2"
    assert (settings.chunk_size, settings.chunk_overlap) == (500, 50)
    assert (settings.ingest_batch_size, settings.ingest_concurrency) == (16, 4)


def test_paths_are_required_unless_migrating(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "give at least one PATH (or --migrate, or --reindex)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["docs", "--drop-backup"])
    assert "--drop-backup goes with --migrate" in capsys.readouterr().err


def test_bad_settings_exit_with_a_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MILVUS_URI", str(tmp_path / "milvus.db"))
    code = main([str(tmp_path)], out=io.StringIO())
    assert code == EXIT_ERROR
    err = capsys.readouterr().err
    assert "MILVUS_URI must be a Milvus server address" in err
    assert "Traceback" not in err


def test_invalid_collection_name_is_rejected(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([str(tmp_path), "--collection", "bad name;drop"], out=io.StringIO()) == EXIT_ERROR
    assert "MILVUS_COLLECTION" in capsys.readouterr().err


def test_an_embedding_service_without_the_model_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    openai_standin: OpenAIStandIn,
) -> None:
    """An OpenAI-compatible server that serves chat but not this embedding model (the
    stand-in has no /embeddings) answers 404: that was a traceback from the ingest."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MILVUS_LITE_PATH", str(tmp_path / "kb.db"))
    monkeypatch.setenv("OPENAI_BASE_URL", openai_standin.base_url)
    monkeypatch.setenv("EMBEDDINGS", "openai")
    monkeypatch.setenv("OPENAI_MAX_RETRIES", "0")
    (tmp_path / "a.txt").write_text("Some text to embed.")
    assert main([str(tmp_path / "a.txt")], out=io.StringIO()) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "error: The embedding service has no model 'text-embedding-3-small'" in err
    assert "EMBEDDINGS=local" in err and "Traceback" not in err


def test_summary_line_counts_everything() -> None:
    outcomes = [
        FileOutcome("a", "added", 3),
        FileOutcome("b", "replaced", 2),
        FileOutcome("c", "unchanged", 4),
        FileOutcome("d", "failed", reason="corrupt"),
    ]
    assert summary_line(outcomes, skipped=2, seconds=1.25) == (
        "Ingested 2 files (5 chunks written), 1 unchanged, 2 skipped, 1 failed in 1.2 s"
    )
