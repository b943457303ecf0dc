from langchain_core.documents import Document

from ingest.chunking import chunk_id, content_hash, split_pages


def _pages() -> list[Document]:
    para = "Sentence number {n} talks about vector search and retrieval. "
    first = "".join(para.format(n=n) for n in range(30))
    second = "".join(para.format(n=n) for n in range(30, 40))
    return [
        Document(page_content=first, metadata={"page": 1}),
        Document(page_content=second, metadata={"page": 2}),
    ]


def test_chunks_carry_citation_metadata() -> None:
    chunks = split_pages(
        _pages(),
        kind="pdf",
        source="docs/a.pdf",
        file_hash="h1",
        chunk_size=300,
        chunk_overlap=30,
        extra_metadata={"added_at": 5},
    )
    assert len(chunks) > 2
    assert [c.metadata["chunk"] for c in chunks] == list(range(len(chunks)))
    assert {c.metadata["chunks"] for c in chunks} == {len(chunks)}
    assert {c.metadata["source"] for c in chunks} == {"docs/a.pdf"}
    assert {c.metadata["file_hash"] for c in chunks} == {"h1"}
    assert {c.metadata["added_at"] for c in chunks} == {5}
    assert chunks[0].metadata["page"] == 1 and chunks[-1].metadata["page"] == 2
    assert all(len(c.text) <= 300 for c in chunks)


def test_ids_are_stable_and_distinct() -> None:
    kwargs = dict(kind="text", source="a.txt", chunk_size=300, chunk_overlap=30)
    first = split_pages(_pages(), file_hash="h1", **kwargs)  # type: ignore[arg-type]
    again = split_pages(_pages(), file_hash="h1", **kwargs)  # type: ignore[arg-type]
    changed = split_pages(_pages(), file_hash="h2", **kwargs)  # type: ignore[arg-type]
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    assert not {c.id for c in first} & {c.id for c in changed}
    assert chunk_id("a.txt", "h1", 0) != chunk_id("b.txt", "h1", 0)


def test_content_hash_tells_versions_apart() -> None:
    assert content_hash(b"v1") == content_hash(b"v1") != content_hash(b"v2")


def test_whitespace_only_pieces_are_dropped() -> None:
    pages = [Document(page_content="Real text.\n\n\n\n   \n\n")]
    chunks = split_pages(
        pages, kind="text", source="a.txt", file_hash="h", chunk_size=100, chunk_overlap=0
    )
    assert [c.text for c in chunks] == ["Real text."]
