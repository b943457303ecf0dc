"""Whether a process on this host is still running (to tell what a dead one left behind)."""

from __future__ import annotations

import os


def process_exists(pid: int) -> bool:
    """Whether process `pid` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
