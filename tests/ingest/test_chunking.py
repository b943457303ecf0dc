from langchain_core.documents import Document

from core.knowledge import DocumentKey
from ingest.chunking import Origin, chunk_id, content_hash, ingest_version, split_pages

ORIGIN = Origin(DocumentKey("ada", "docs/a.pdf"), added_at=5, chat_id="chat-1")


def _pages() -> list[Document]:
    para = "Sentence number {n} talks about vector search and retrieval. "
    first = "".join(para.format(n=n) for n in range(30))
    second = "".join(para.format(n=n) for n in range(30, 40))
    return [
        Document(page_content=first, metadata={"page": 1, "title": "Search"}),
        Document(page_content=second, metadata={"page": 2, "title": "Search"}),
    ]


def test_chunks_carry_citation_metadata() -> None:
    chunks = split_pages(
        _pages(), kind="pdf", origin=ORIGIN, file_hash="h1", chunk_size=300, chunk_overlap=30
    )
    assert len(chunks) > 2
    assert [c.chunk for c in chunks] == list(range(len(chunks)))
    assert {c.chunks for c in chunks} == {len(chunks)}
    assert {c.document for c in chunks} == {DocumentKey("ada", "docs/a.pdf")}
    assert {(c.file_hash, c.added_at, c.chat_id) for c in chunks} == {("h1", 5, "chat-1")}
    assert chunks[0].page == 1 and chunks[-1].page == 2
    assert {c.extra["title"] for c in chunks} == {"Search"}
    assert {c.extra["ingest_version"] for c in chunks} == {ingest_version(300, 30)}
    assert all(len(c.text) <= 300 for c in chunks)


def test_ids_are_stable_and_distinct() -> None:
    def split(file_hash: str, origin: Origin = ORIGIN) -> list[str]:
        chunks = split_pages(
            _pages(),
            kind="text",
            origin=origin,
            file_hash=file_hash,
            chunk_size=300,
            chunk_overlap=30,
        )
        return [c.id for c in chunks]

    first = split("h1")
    assert first == split("h1")
    assert len(set(first)) == len(first)
    assert not set(first) & set(split("h2"))
    bob = Origin(DocumentKey("bob", "docs/a.pdf"), added_at=5)
    assert not set(first) & set(split("h1", bob))
    key = DocumentKey("ada", "a.txt")
    assert chunk_id(key, "h1", 0) != chunk_id(DocumentKey("ada", "b.txt"), "h1", 0)


def test_content_hash_tells_versions_apart() -> None:
    assert content_hash(b"v1", "x") == content_hash(b"v1", "x") != content_hash(b"v2", "x")
    assert content_hash(b"v1", "x") != content_hash(b"v1", "y")  # a new chunker: a new version


def test_whitespace_only_pieces_are_dropped() -> None:
    pages = [Document(page_content="Real text.\n\n\n\n   \n\n")]
    chunks = split_pages(
        pages, kind="text", origin=ORIGIN, file_hash="h", chunk_size=100, chunk_overlap=0
    )
    assert [c.text for c in chunks] == ["Real text."]
