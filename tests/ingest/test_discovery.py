from pathlib import Path

from ingest.discovery import discover
from tests.samples import write


def test_sources_are_relative_and_unsupported_files_listed(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write(root / "a.txt", "a")
    write(root / "sub" / "b.md", "b")
    write(root / "sub" / "c.png", b"\x89PNG")
    write(root / ".git" / "config", "hidden")
    write(root / ".hidden.txt", "hidden")
    single = write(tmp_path / "single.pdf", b"%PDF-1.4")

    found = discover([root, single, tmp_path / "missing"])

    assert [source for _, source in found.files] == ["a.txt", "sub/b.md", "single.pdf"]
    assert all(not source.startswith("/") for _, source in found.files)
    assert found.skipped == [
        ("sub/c.png", "unsupported type '.png'"),
        (str(tmp_path / "missing"), "no such file or folder"),
    ]


def test_the_same_file_twice_is_ingested_once(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "a")
    found = discover([path, tmp_path])
    assert [source for _, source in found.files] == ["a.txt"]
