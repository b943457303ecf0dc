"""The secret that signs sign-in tokens (`CHAINLIT_AUTH_SECRET`), generated on first run.

Chainlit checks for it before the app's start-up hook runs, so `scripts/run.sh` asks
`python -m accounts secret` for it when the variable is unset. The file is created with
owner-only permissions in `data/` (never committed).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def auth_secret(path: Path) -> str:
    """The secret kept in `path`, created there first if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # created meanwhile by another process: use that one
            pass
        else:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
