"""What the app asks of its knowledge base, in the app's own terms (no Milvus types here).

`core.store.MilvusKnowledgeBase` is the one implementation that talks to Milvus; the chain
and UI tests hand in an in-memory fake with the same protocol. Everything the app stores
or finds is expressed with the small records below, and every read or delete carries an
`AccessScope` built by the app from who is asking, never from what a browser sent.

>>> scope = AccessScope.for_user("ada")
>>> scope.allows(owner="ada", chat_id=None), scope.allows(owner=LIBRARY_OWNER, chat_id=None)
(True, True)
>>> scope.allows(owner="bob", chat_id=None)
False
>>> scope.in_chat("chat-1").allows(owner="ada", chat_id="chat-2")
False
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, runtime_checkable

LIBRARY_OWNER = "@library"
"""The owner of documents ingested with the CLI: the shared library everyone can read.
No user name can start with `@`, so no user can own it by name."""

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".html", ".htm"})
"""Files whose chunks are stored as Markdown: Markdown itself, and HTML, whose main
content the ingest extracts as Markdown (`ingest.html_extraction`)."""

HEADING_SEPARATOR = " › "
"""Between the parts of a heading path: the first line of a structured document's chunks
and their `section` metadata (`ingest.chunking`), and citation labels."""

MetadataValue = str | int | float | bool


def heading_path(*parts: str | None) -> str:
    """The non-empty `parts`, outermost first, as one heading path.

    >>> heading_path("Coroutines and Tasks", None, "Timeouts")
    'Coroutines and Tasks › Timeouts'
    """
    return HEADING_SEPARATOR.join(part for part in parts if part)


HEADING_BREAK = "\n\n"
"""Between a structured document's chunk's heading path and its text (`led_by`)."""


def led_by(heading: str, text: str) -> str:
    """`text` as a structured document's chunk stores it: led by its `heading` path (for
    the embedding and the model), unless there is none.

    >>> led_by("Tasks › Timeouts", "Use timeout()."), led_by("", "Intro.")
    ('Tasks › Timeouts\\n\\nUse timeout().', 'Intro.')
    """
    return f"{heading}{HEADING_BREAK}{text}" if heading else text


def without_lead(text: str, heading: str) -> str:
    """`text` without the `heading` path `led_by` put first (as it was if none did).

    >>> without_lead(led_by("Tasks › Timeouts", "Use timeout()."), "Tasks › Timeouts")
    'Use timeout().'
    >>> without_lead("Tasks › Timeouts\\n\\nUse timeout().", "")
    'Tasks › Timeouts\\n\\nUse timeout().'
    """
    return text.removeprefix(f"{heading}{HEADING_BREAK}") if heading else text


@dataclass(frozen=True)
class AccessScope:
    """Which documents a call may see or change.

    `owners=None` means every owner (the ingest CLI, maintenance); otherwise only
    documents whose owner is listed. `chat_id` narrows further to one chat's uploads.
    """

    owners: tuple[str, ...] | None
    chat_id: str | None = None

    @classmethod
    def everything(cls) -> AccessScope:
        return cls(owners=None)

    @classmethod
    def for_user(cls, user: str) -> AccessScope:
        """A user's own documents plus the shared library."""
        return cls(owners=(user, LIBRARY_OWNER))

    @classmethod
    def library(cls) -> AccessScope:
        return cls(owners=(LIBRARY_OWNER,))

    def in_chat(self, chat_id: str) -> AccessScope:
        return replace(self, chat_id=chat_id)

    def allows(self, *, owner: str, chat_id: str | None) -> bool:
        if self.owners is not None and owner not in self.owners:
            return False
        return self.chat_id is None or chat_id == self.chat_id


SearchMode = Literal["hybrid", "dense", "keyword", "mmr"]
"""hybrid: keyword (BM25) and dense routes fused (see `Fusion`); dense: embeddings only;
keyword: BM25 only; mmr: relevant but not repetitive, over the hybrid candidates."""
Route = Literal["dense", "keyword"]
Fusion = Literal["relative", "rrf"]
"""How hybrid search combines its routes: `relative` (the default) adds their scores, each
over the best in its route; `rrf` adds 1 / (60 + rank) (reciprocal rank fusion), blind to
how far apart the scores are. See `core.fusion`."""
RerankMode = Literal["off", "cross-encoder", "llm"]
"""Reranking after the search: none (the default), a local cross-encoder model
(`RERANKER_MODEL`), or listwise by the configured chat model."""
KEYWORD_WEIGHT = 1.0  # the keyword route's weight in the fusion (the dense route's is 1)


@dataclass(frozen=True)
class SearchRequest:
    """One search, within `scope` and optionally a few sources."""

    query: str
    scope: AccessScope
    mode: SearchMode
    k: int
    fetch_k: int
    lambda_mult: float
    sources: tuple[str, ...] = ()
    fusion: Fusion = "relative"
    keyword_weight: float = KEYWORD_WEIGHT
    rerank: RerankMode = "off"


@dataclass(frozen=True)
class Hit:
    """One chunk a search found: its score in the mode that ran (None for MMR) and its
    rank (from 1) in each route that found it."""

    id: str
    text: str
    source: str
    owner: str
    chunk: int
    page: int | None
    score: float | None
    chat_id: str | None = None
    extra: Mapping[str, MetadataValue] = field(default_factory=dict)
    ranks: Mapping[Route, int] = field(default_factory=dict)
    file_hash: str = ""  # the version of the document the chunk belongs to


@dataclass(frozen=True)
class Candidate:
    """A chunk a route found, before its passage is read: its score in the route or the
    fusion that ranked it, and its rank (from 1) in each route that found it."""

    id: str
    score: float | None
    ranks: Mapping[Route, int] = field(default_factory=dict)


KEYWORD_UNAVAILABLE = (
    "Keyword (BM25) search is not available on this Milvus (it needs Milvus 2.5 or later, "
    "or Milvus Lite): this search used the dense vectors only."
)


def effective_mode(mode: SearchMode, keyword_search: bool) -> SearchMode:
    """The mode a search runs in: without a BM25 field, keyword routes fall back to dense.

    >>> effective_mode("hybrid", keyword_search=False), effective_mode("mmr", False)
    ('dense', 'mmr')
    """
    return "dense" if mode in ("hybrid", "keyword") and not keyword_search else mode


@dataclass(frozen=True)
class DocumentKey:
    """A document is identified by its owner and its name: two users may both have
    a `notes.md`."""

    owner: str
    source: str


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk to store: its text, where it came from and which version of the file.

    `page` is set for paged formats (PDF); `chat_id` for uploads from a chat; `extra`
    holds loader metadata (an HTML title, for example).
    """

    id: str
    text: str
    document: DocumentKey
    chunk: int
    chunks: int
    file_hash: str
    added_at: int
    page: int | None = None
    chat_id: str | None = None
    extra: Mapping[str, MetadataValue] = field(default_factory=dict)


INGEST_VERSION_FIELD = "ingest_version"
"""The chunk extra naming the extractor and chunker that made it (`ingest.chunking`)."""

UNKNOWN_VERSION = ""
"""The `file_hash` of stray chunks whose version lost its first chunk (an interrupted
write): they belong to no version the store can describe."""


@dataclass(frozen=True)
class StoredVersion:
    """A version of a document found in the store: how many chunks it says it has, how
    many are there (fewer means an interrupted write), and whether it is the committed
    one searches see (not still being written, nor replaced)."""

    file_hash: str
    declared: int
    stored: int
    committed: bool = True

    @property
    def complete(self) -> bool:
        return self.stored == self.declared


@dataclass(frozen=True)
class DocumentInfo:
    """One document, as `/docs` lists it; `ingest_version` names the extractor and chunker
    that made its chunks (None: made before versions were recorded)."""

    source: str
    owner: str
    chunks: int
    added_at: int | None
    chat_id: str | None = None
    ingest_version: str | None = None


@dataclass(frozen=True)
class Capabilities:
    """What the vector store behind the knowledge base can do, probed once at open."""

    backend: Literal["milvus-lite", "milvus"]
    version: str
    filter_templates: bool
    bm25: bool
    sparse_vectors: bool
    partition_key: bool
    ledger_lag: float = 0.0
    """Seconds a writer waits after changing the version ledger before it writes or
    deletes the chunks concerned, so that a search may check its hits against a ledger
    copy read up to that long before: 0 where reading the ledger afresh is cheap (Milvus
    Lite), 1 s on a Milvus server, whose Strong reads wait for the next time tick
    (~200 ms). Every process on a store derives it from the same probe, so all agree."""
    filtered_ann: bool = True
    """Whether the backend's approximate (HNSW) index still finds every row a selective
    filter allows. Every search here is filtered (by owner, chat, source), often down to
    a few rows among thousands: a Milvus server then searches exactly by itself, but
    Milvus Lite's HNSW (faiss, walking the graph past the rows its filter excludes) lost
    a user's only document in 5 of 60 scoped searches beside 3,000 other rows. Where
    False the dense vectors get an exact (FLAT) index instead."""
    flush_every: int | None = None
    """Rows a writer inserts before it flushes them, or None to leave flushing to the
    backend. Milvus Lite turns every unflushed row into a Python list on each search
    (about 25 µs a row, holding the interpreter's lock), so a search beside a large ingest
    took 50 ms per 2,000 rows until the ingest's final flush; a Milvus server searches
    its growing segments natively and seals them itself. Where set, a commit also
    flushes first: Milvus Lite's flush hides the rows it moves while it runs, so only
    hidden (uncommitted) rows may ever be unflushed. A bulk load that has Milvus Lite to
    itself flushes in larger batches instead (`core.store.knowledge_base.BULK_FLUSH_EVERY`:
    Lite's keyword scores are per segment)."""
    short_reads: bool = False
    """Whether a read can leave out rows a flush is moving from its buffer to a segment
    (Milvus Lite, for a few ms per flush; processes sharing one `milvus-lite server` can
    meet another's flush). Where True, the reads that decide what a commit or a removal
    does are taken again; a Milvus server's Strong read sees every row, and waits for the
    next time tick (~0.4 s on 2.3.5 here), so it is taken once."""

    @property
    def label(self) -> str:
        return f"{'Milvus Lite' if self.backend == 'milvus-lite' else 'Milvus'} {self.version}"


@runtime_checkable
class Searcher(Protocol):
    """The part of a knowledge base the retriever needs."""

    async def search(self, request: SearchRequest) -> list[Hit]: ...

    async def count(self, scope: AccessScope) -> int: ...

    @property
    def keyword_search(self) -> bool:
        """Whether the collection carries the BM25 field (keyword search possible)."""
        ...


class KnowledgeBase(Searcher, Protocol):
    """Everything the app does with its documents."""

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def add_chunks(self, chunks: Sequence[ChunkRecord]) -> None: ...

    async def stored_versions(self, document: DocumentKey) -> list[StoredVersion]: ...

    async def delete_version(self, document: DocumentKey, file_hash: str) -> None: ...

    async def begin_version(self, document: DocumentKey, file_hash: str) -> None:
        """Register a version about to be written: hidden from every search, listing
        and count until `commit_version`; any chunks of it already stored are removed."""
        ...

    async def commit_version(self, document: DocumentKey, file_hash: str, chunks: int) -> None:
        """Check all `chunks` are stored, then in one step show this version and hide
        every other version of the document, whose chunks are deleted after."""
        ...

    async def list_documents(self, scope: AccessScope) -> list[DocumentInfo]: ...

    async def remove_document(self, source: str, scope: AccessScope) -> int: ...

    async def flush(self) -> None: ...

    async def ping(self) -> str:
        """A short description of the store when it answers (for health checks); raises
        `StoreUnavailable` when it does not."""
        ...

    async def close(self) -> None: ...
