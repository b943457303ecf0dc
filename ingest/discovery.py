"""Finding the files to ingest under the paths given on the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ingest.loaders import kind_for


@dataclass
class Discovered:
    """Files to ingest as `(path, source)`, and those skipped with the reason."""

    files: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def discover(arguments: list[Path]) -> Discovered:
    """Walk files and folders (recursively, hidden entries ignored).

    A file's `source` is its path relative to the folder argument that contains it, or
    its name when the argument is the file itself: never an absolute path of this machine.
    """
    found = Discovered()
    seen: set[Path] = set()
    for argument in arguments:
        if argument.is_file():
            candidates = [(argument, argument.name)]
        elif argument.is_dir():
            candidates = [
                (path, path.relative_to(argument).as_posix())
                for path in sorted(argument.rglob("*"))
                if path.is_file() and not _hidden(path.relative_to(argument))
            ]
        else:
            found.skipped.append((str(argument), "no such file or folder"))
            continue
        for path, source in candidates:
            resolved = path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            if kind_for(path.name) is None:
                found.skipped.append((source, f"unsupported type '{path.suffix or path.name}'"))
            else:
                found.files.append((path, source))
    return found


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)
