"""The shape the code must keep: one door per external system."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["core", "chains", "ingest", "ui", "accounts"]
# Which of our modules may import which client library (a package prefix on the left).
DOORS = {
    "pymilvus": "core/store/",
    "langchain_milvus": "core/store/",
    "openai": "core/providers.py",
    "langchain_openai": "core/providers.py",
    "sqlalchemy": "accounts/",
    "alembic": "accounts/",
    "argon2": "accounts/passwords.py",
}


def our_modules() -> list[Path]:
    files = [ROOT / "app.py"]
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("library", sorted(DOORS))
def test_each_external_system_has_one_door(library: str) -> None:
    door = DOORS[library]
    offenders = [
        str(path.relative_to(ROOT))
        for path in our_modules()
        if library in imported(path) and not str(path.relative_to(ROOT)).startswith(door)
    ]
    assert offenders == [], f"{library} may only be imported in {door}"


def test_the_guard_sees_imports() -> None:
    """The check above would notice a violation (it reads real imports, nested ones too)."""
    assert "pymilvus" in imported(ROOT / "core" / "store" / "connection.py")
    assert "pymilvus" not in imported(ROOT / "chains" / "errors.py")
    assert "core" in imported(ROOT / "core" / "resources.py")
