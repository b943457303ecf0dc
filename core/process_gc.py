"""Cyclic garbage collection for short command-line runs.

Starting a command imports some 2,000 modules (LangChain, pymilvus, pandas, Milvus Lite,
ONNX Runtime) and builds long-lived objects; CPython's cyclic collector runs hundreds of
times meanwhile (every few hundred allocations), and again over every object at exit,
and frees next to nothing either time. For `python -m chains "..."` that was about a
quarter of its CPU time (bench/README.md, "The ask CLI's start-up").

- `hold_collection()`, first thing in a command: no collections while it starts;
- `resume_collection()` once loaded: what is alive then stays alive (`gc.freeze` moves it
  where the collector no longer looks) and collection resumes, so that answering many
  questions in one run still frees their garbage;
- `freeze_for_exit()` just before the command exits: the interpreter's last collections
  then skip everything (the operating system frees the memory anyway).

`resume_collection` does nothing unless collection is held, so library code may call it
whoever runs it (tests, the app).

A long-running process (the app) calls `freeze_start_up()` once it is up: a full
collection there walks every object start-up left (some 200,000: modules, classes,
pydantic models) and took 70-90 ms with the interpreter's lock held, an event-loop stall
at whatever moment it fell, typically during an ingest, which allocates most.
"""

from __future__ import annotations

import gc


def hold_collection() -> None:
    gc.disable()


def resume_collection() -> None:
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def freeze_for_exit() -> None:
    gc.freeze()


def freeze_start_up() -> None:
    """Collect what starting left, then keep what survives out of later collections'
    sight. Once per process: later calls (a reopened store) change nothing."""
    if gc.isenabled() and gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()
