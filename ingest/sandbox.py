"""Parse one file in a worker process with a CPU-time budget and a memory cap.

The checks in `ingest.limits` stop the bombs we know; this bounds the rest (a parser
stuck on some crafted structure, a pathological encoding). A fresh process per file is
forked from a forkserver that has already imported the parsers, so it starts in
milliseconds, and the kernel enforces the limits: `RLIMIT_CPU` ends it when its CPU time
runs out, `RLIMIT_AS` makes an allocation past the cap fail. The caller also stops
waiting (and kills it) after a wall-clock deadline, for a machine too busy to give it
its CPU time.

Blocking: call it from a worker thread (the pipeline does).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

from core.errors import UnreadableFile
from ingest.limits import MIB, ParseLimits
from ingest.loaders import LoadedFile, load_bytes

# The parsers and their imports, loaded once in the forkserver; "__main__" too, so a
# child does not re-import the program's main script (chainlit's CLI, pytest) to start.
PRELOAD = ["__main__", "ingest.loaders", "pypdf", "docx2txt", "bs4", "charset_normalizer"]
WALL_FACTOR = 3.0  # the wall-clock deadline, in CPU budgets: room for a busy machine
PARSE_NICENESS = 10
START_SECONDS = 10.0  # plus the first start of the forkserver itself

_context_lock = threading.Lock()
_context: Any = None


def _forkserver() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            _context = context
        return _context


def parse_bounded(data: bytes, name: str, limits: ParseLimits) -> LoadedFile:
    """`load_bytes(data, name, limits)` in a worker process; raises `UnreadableFile` with
    the reason when the file breaks a limit, takes too long or needs too much memory."""
    context = _forkserver()
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(
        target=_parse_in_worker, args=(sender, data, name, limits), daemon=True
    )
    worker.start()
    sender.close()
    try:
        deadline = limits.cpu_seconds * WALL_FACTOR + START_SECONDS
        if not receiver.poll(deadline):
            raise _too_slow(limits)
        try:
            outcome, value = receiver.recv()
        except EOFError:  # the worker died without a word: the kernel ended it
            worker.join(5)
            raise _killed(worker.exitcode, limits) from None
    finally:
        receiver.close()
        if worker.is_alive():
            worker.kill()
        worker.join(5)
        worker.close()
    if outcome == "error":
        raise UnreadableFile(str(value))
    if outcome == "memory":
        raise _out_of_memory(limits)
    assert isinstance(value, LoadedFile)
    return value


def _parse_in_worker(sender: Connection, data: bytes, name: str, limits: ParseLimits) -> None:
    os.nice(PARSE_NICENESS)  # parsing is background work: the chats' event loop goes first
    cpu = max(1, int(limits.cpu_seconds + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + limits.memory_bytes,) * 2)
    try:
        result: tuple[str, Any] = ("ok", load_bytes(data, name, limits))
    except UnreadableFile as exc:
        result = ("error", str(exc))
    except MemoryError:
        result = ("memory", None)
    except Exception as exc:  # a parser's own failure: the loaders already word most
        result = ("error", f"could not parse it ({type(exc).__name__})")
    sender.send(result)
    sender.close()


def _address_space() -> int:
    """This process's current virtual size: the cap is on top of what the forkserver
    already mapped."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    return pages * resource.getpagesize()


def _too_slow(limits: ParseLimits) -> UnreadableFile:
    return UnreadableFile(
        f"refused: reading it took longer than its time budget ({limits.cpu_seconds:.0f} s "
        "of CPU, PARSE_CPU_SECONDS); a crafted or damaged file?"
    )


def _killed(exitcode: int | None, limits: ParseLimits) -> UnreadableFile:
    if exitcode in (-signal.SIGXCPU, -signal.SIGKILL):
        return _too_slow(limits)
    return UnreadableFile(
        f"refused: the parser stopped unexpectedly (exit code {exitcode}); it may need more "
        f"than {limits.memory_bytes // MIB} MB of memory (PARSE_MEMORY_MB)"
    )


def _out_of_memory(limits: ParseLimits) -> UnreadableFile:
    return UnreadableFile(
        f"refused: reading it needs more than {limits.memory_bytes // MIB} MB of memory "
        "(PARSE_MEMORY_MB); a crafted or damaged file?"
    )
