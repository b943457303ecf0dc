"""The version ledger: which document versions are hidden, kept in the store itself.

Milvus has no transactions, so a document's new chunks cannot appear all at once. They
are written while the ledger says their version is *pending*, and the ledger is what
every search, listing and count consults: chunks of a pending version (being written, or
left by a killed writer), of a *superseded* one (replaced, its chunks not yet deleted) or
of a *gone* one (just deleted) are never shown. Committing a version is one ledger write
that at once un-hides it and hides the versions it replaces: the single atomic switch.

The ledger is a tiny second collection, `<collection>__ledger`, with one row per document
that has hidden versions. A document's state is never updated in place: a new row with a
higher `seq` is inserted (a one-row insert is atomic on every backend) and the older rows
are deleted after; readers take the highest `seq` of each document. Rows of documents
with nothing left to hide are deleted, so the ledger holds only writes in flight and the
last few minutes' replacements.

It is shared by every process on the store (the app and the ingest CLI) and read with
Strong consistency. A reader that read the ledger just before a writer registered a
pending version could still find that version's first chunks; so a search checks its
hits against a ledger read that started after the search ended, less the backend's
`ledger_lag`, and "gone" entries stay for a grace period after their chunks were deleted
so that check still knows them (see `core.store.knowledge_base`). On a Milvus server a
Strong read waits for the next time tick (~200 ms): there writers wait `ledger_lag`
after each ledger change before touching the chunks, and a background read every
`ledger_lag / 2` keeps a recent enough copy, so searches need not read the ledger
themselves. A chunk a search finds was written after its version's ledger entry plus
the lag; a copy read after the search ended less the lag therefore knows that entry.
A commit outdates the copies read before its switch (`outdate_copies_before`), so the
committing process's next search finds the document.
On Milvus Lite in process no other process can open the data, so every ledger write is
this process's own (`LocalWrites`): a read stays the whole ledger until one of them
starts, and searches reuse it meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pymilvus import AsyncMilvusClient, DataType, MilvusClient, MilvusException

from core.coalesce import Coalescer
from core.knowledge import DocumentKey
from core.processes import process_exists
from core.store.filters import MAX_QUERY_ROWS, FilterValue, MilvusFilter, literal
from core.store.schema import OWNER_FIELD, create_indexes

logger = logging.getLogger(__name__)

State = Literal["pending", "superseded", "gone"]
LEDGER_SUFFIX = "__ledger"
REFRESH_IDLE = 60.0  # background ledger reads stop after this long without a search
STALE_AFTER = 30 * 60.0
"""A pending version whose writer cannot be checked (another host) counts as abandoned
after this long; on this host a dead writer's versions are abandoned at once."""

_VECTOR = "vector"  # Milvus wants a vector field in every collection; this one is unused


def ledger_name(collection: str) -> str:
    return f"{collection}{LEDGER_SUFFIX}"


def document_id(document: DocumentKey) -> str:
    return hashlib.sha256(f"{document.owner}\n{document.source}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Entry:
    """One hidden version: why it is hidden, since when, and (pending) by whom."""

    state: State
    since: float
    writer: str | None = None


@dataclass(frozen=True)
class DocumentState:
    """The hidden versions of one document (by file hash) as of ledger row `seq`."""

    document: DocumentKey
    seq: int = -1
    versions: Mapping[str, Entry] = field(default_factory=dict)

    def with_version(self, file_hash: str, entry: Entry | None) -> DocumentState:
        versions = dict(self.versions)
        if entry is None:
            versions.pop(file_hash, None)
        else:
            versions[file_hash] = entry
        return replace(self, versions=versions)

    def hashes(self, *states: State) -> list[str]:
        return sorted(h for h, e in self.versions.items() if e.state in states)


@dataclass(frozen=True)
class Snapshot:
    """The whole ledger as one read saw it, when (`time.monotonic()`) that read started,
    and the count of this process's writes it is current for (see `LocalWrites`)."""

    documents: Mapping[DocumentKey, DocumentState] = field(default_factory=dict)
    read_at: float = field(default=-math.inf, compare=False)
    current_at: int | None = field(default=None, compare=False)

    def state_of(self, document: DocumentKey) -> DocumentState:
        return self.documents.get(document) or DocumentState(document)

    def hides(self, owner: str, source: str, file_hash: str) -> bool:
        """Whether a chunk of this version must not be shown (any entry hides it)."""
        state = self.documents.get(DocumentKey(owner, source))
        return state is not None and file_hash in state.versions

    def hides_what_was_shown(self, earlier: Snapshot) -> bool:
        """Whether this snapshot hides as replaced or removed a version that `earlier`
        showed: a search filtered by `earlier` may then lack the document altogether (its
        old chunks deleted, its new ones left out). Versions that are only being written
        (pending) or that `earlier` already hid do not count: chunks of the former that a
        search found are dropped by `hides`, and the latter's are not found."""
        for document, state in self.documents.items():
            hidden_before = earlier.state_of(document).versions.keys()
            for file_hash, entry in state.versions.items():
                if entry.state != "pending" and file_hash not in hidden_before:
                    return True
        return False

    def exclusion(self, *states: State) -> MilvusFilter | None:
        """A filter leaving out the chunks of versions in `states` (default: those whose
        chunks may still exist); None when there are none, so the common case adds
        nothing to a search."""
        wanted = states or ("pending", "superseded")
        terms: list[str] = []
        params: dict[str, FilterValue] = {}
        for i, state in enumerate(self.documents.values()):
            hashes = state.hashes(*wanted)
            if not hashes:
                continue
            params |= {
                f"lo{i}": state.document.owner,
                f"ls{i}": state.document.source,
                f"lh{i}": hashes,
            }
            terms.append(
                f"({OWNER_FIELD} == {{lo{i}}} and source == {{ls{i}}} and file_hash in {{lh{i}}})"
            )
        if not terms:
            return None
        return MilvusFilter(f"not ({' or '.join(terms)})", params)


@dataclass
class LocalWrites:
    """The ledger writes of this process, for a ledger no other process can write
    (Milvus Lite in process: one process per data directory). A read that began with no
    write in flight is the whole ledger for as long as no write starts after it."""

    started: int = 0
    in_flight: int = 0

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        self.started += 1
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    def mark(self) -> int | None:
        """What a read beginning now will be current for (None: a write is in flight)."""
        return None if self.in_flight else self.started


@functools.cache
def local_writes(ledger: str) -> LocalWrites:
    """This process's writes to the ledger of that name, shared by every handle on it
    (two Lite files with a collection of the same name share one: more reads, never
    fewer)."""
    return LocalWrites()


def writer_token() -> str:
    """Who is writing: host, process id and the process's start time (so a reused
    process id is not mistaken for the writer)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_ticks(os.getpid())}"


def writer_alive(token: str | None) -> bool | None:
    """Whether the writer that made `token` still runs; None when this host cannot tell."""
    if token is None:
        return None
    host, _, rest = token.partition(":")
    pid_text, _, ticks = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    return _start_ticks(int(pid_text)) == ticks


def abandoned(entry: Entry, now: float) -> bool:
    """A pending version nobody will finish: its writer is dead, or it is very old."""
    alive = writer_alive(entry.writer)
    return alive is False or (alive is None and now - entry.since > STALE_AFTER)


def _start_ticks(pid: int) -> str:
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115, PTH123  (tiny, read once)
    except OSError:
        return "gone" if not process_exists(pid) else "?"
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, starttime


# ----- the collection ---------------------------------------------------------------


def ensure_ledger(client: MilvusClient, collection: str, timeout: float) -> str:
    """Create the ledger collection when it is missing and load it (blocking)."""
    name = ledger_name(collection)
    if not client.has_collection(name, timeout=timeout):
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("doc", DataType.VARCHAR, max_length=64)
        schema.add_field("seq", DataType.INT64)
        schema.add_field(OWNER_FIELD, DataType.VARCHAR, max_length=512)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        schema.add_field("versions", DataType.VARCHAR, max_length=65535)
        schema.add_field(_VECTOR, DataType.FLOAT_VECTOR, dim=2)
        index = client.prepare_index_params()
        index.add_index(_VECTOR, index_type="FLAT", metric_type="L2")
        try:
            client.create_collection(
                name, schema=schema, consistency_level="Strong", timeout=timeout
            )
        except MilvusException as exc:
            if "already exist" not in str(exc.message):
                raise
        else:
            create_indexes(client, name, index, timeout)
    client.load_collection(name, timeout=timeout)
    return name


def drop_ledger(client: MilvusClient, collection: str, timeout: float) -> None:
    name = ledger_name(collection)
    if client.has_collection(name, timeout=timeout):
        with local_writes(name).writing():
            client.drop_collection(name, timeout=timeout)


class Ledger:
    """Reads and writes the ledger through the async client. `fresh()` reads it anew,
    concurrent callers sharing one read that started after they asked; `covering_now`
    settles for a recent enough copy (see the module's docstring). `local` when only this
    process writes the ledger (Milvus Lite in process)."""

    def __init__(
        self,
        client: Callable[[], AsyncMilvusClient],
        collection: str,
        timeout: float,
        clock: Callable[[], float] = time.time,
        lag: float = 0.0,
        local: LocalWrites | None = None,
    ) -> None:
        self._client = client
        self.name = ledger_name(collection)
        self._timeout = timeout
        self._clock = clock
        self.lag = lag
        self._local = local
        self._reads: Coalescer[None, None, Snapshot] = Coalescer(self._read_batch)
        self._refresher: asyncio.Task[None] | None = None
        self._last_asked = -math.inf
        self._outdated_before = -math.inf
        self.latest: Snapshot | None = None
        self.reads = 0  # how many ledger reads ran (for tests and benchmarks)

    async def fresh(self) -> Snapshot:
        return await self._reads.submit(None, None)

    async def covering_now(self) -> Snapshot:
        """A snapshot that knows every ledger change whose chunks a search ending now
        could have found: one whose read started after now less the lag (the latest
        one when it is that recent, else a fresh read). With a lag, asking keeps a
        background read going every `lag / 2` until nobody has asked for a while. With
        only this process writing, the latest read while no write started since."""
        moment = max(time.monotonic() - self.lag, self._outdated_before)
        if self.lag > 0:
            self._keep_fresh()
        latest = self.latest
        if latest is not None and latest.read_at > moment:
            return latest
        if self._local is not None and latest is not None:
            if latest.current_at is not None and latest.current_at == self._local.mark():
                return latest
        return await self.fresh()

    async def let_readers_catch_up(self) -> None:
        """After a ledger change and before touching the chunks it is about: wait until
        every reader's `covering_now` copy knows the change (see the module's docstring)."""
        if self.lag > 0:
            await asyncio.sleep(self.lag)

    def outdate_copies_before(self, moment: float) -> None:
        """This process changed the ledger at `moment` (`time.monotonic()`, after the
        write returned) in a way its own searches must see at once: a commit. A copy
        read before that is not handed out again. With a lag a copy up to `lag` old would
        do, and a document just committed stayed hidden from this process's next question
        for that long (an upload not found by the question right after it)."""
        self._outdated_before = max(self._outdated_before, moment)

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher

    def _keep_fresh(self) -> None:
        self._last_asked = time.monotonic()
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        while time.monotonic() - self._last_asked < REFRESH_IDLE:
            try:
                await self.fresh()
            except Exception as exc:  # the searches read it themselves meanwhile
                logger.debug("background read of the version ledger failed: %s", exc)
            await asyncio.sleep(self.lag / 2)

    async def _read_batch(self, key: None, requests: list[None]) -> list[Snapshot]:
        snapshot = await self._read()
        return [snapshot] * len(requests)

    async def _read(self) -> Snapshot:
        started = time.monotonic()
        current_at = self._local.mark() if self._local is not None else None
        rows = await self._client().query(
            self.name,
            filter="seq >= 0",
            output_fields=["doc", "seq", OWNER_FIELD, "source", "versions"],
            limit=MAX_QUERY_ROWS,
            timeout=self._timeout,
            consistency_level="Strong",
        )
        self.reads += 1
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            kept = latest.get(row["doc"])
            if kept is None or int(row["seq"]) > int(kept["seq"]):
                latest[row["doc"]] = row
        documents = {}
        for row in latest.values():
            document = DocumentKey(str(row[OWNER_FIELD]), str(row["source"]))
            versions = {h: Entry(**e) for h, e in json.loads(row["versions"]).items()}
            documents[document] = DocumentState(document, int(row["seq"]), versions)
        self.latest = Snapshot(documents, read_at=started, current_at=current_at)
        return self.latest

    def _writing(self) -> contextlib.AbstractContextManager[None]:
        return self._local.writing() if self._local is not None else contextlib.nullcontext()

    async def write(self, state: DocumentState) -> DocumentState:
        """Make `state` the document's state: one new row (the atomic switch), then the
        older rows go. A state with nothing hidden leaves no row at all."""
        with self._writing():
            return await self._write(state)

    async def _write(self, state: DocumentState) -> DocumentState:
        doc = document_id(state.document)
        client = self._client()
        if not state.versions:
            await client.delete(self.name, filter=f"doc == {literal(doc)}", timeout=self._timeout)
            return replace(state, seq=-1)
        seq = max(state.seq + 1, time.time_ns())
        versions = {
            h: {"state": e.state, "since": e.since, "writer": e.writer}
            for h, e in state.versions.items()
        }
        await client.insert(
            self.name,
            [
                {
                    "pk": f"{doc}:{seq}",
                    "doc": doc,
                    "seq": seq,
                    OWNER_FIELD: state.document.owner,
                    "source": state.document.source,
                    "versions": json.dumps(versions, sort_keys=True),
                    _VECTOR: [0.0, 0.0],
                }
            ],
            timeout=self._timeout,
        )
        await client.delete(
            self.name,
            filter=f"doc == {literal(doc)} and seq < {seq}",
            timeout=self._timeout,
        )
        return replace(state, seq=seq)

    async def forget(self, state: DocumentState) -> None:
        """Delete exactly the row `state` was read from (not a newer one)."""
        pk = f"{document_id(state.document)}:{state.seq}"
        with self._writing():
            await self._client().delete(
                self.name, filter=f"pk == {literal(pk)}", timeout=self._timeout
            )

    def now(self) -> float:
        return self._clock()
