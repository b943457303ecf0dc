"""Finding the documents whose chunks an older extractor or chunker made.

Re-ingesting a file rebuilds it whenever its ingest version changed (the version is part
of the document's hash, `ingest.chunking.content_hash`), so `python -m ingest --reindex
PATH` rebuilds every document found under PATH. What it cannot rebuild is a document whose
file it was not given: an upload (the app keeps no copy of uploaded files) or a library
document from elsewhere. This module lists those, so the user knows what to do.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.knowledge import LIBRARY_OWNER, AccessScope, DocumentInfo, KnowledgeBase


async def stale_documents(kb: KnowledgeBase, current: str) -> list[DocumentInfo]:
    """Every document (all owners) whose chunks were not made by ingest version
    `current`, library documents first."""
    documents = await kb.list_documents(AccessScope.everything())
    stale = [d for d in documents if d.ingest_version != current]
    return sorted(stale, key=lambda d: (d.owner != LIBRARY_OWNER, d.owner, d.source))


def stale_report(stale: Sequence[DocumentInfo], collection: str) -> list[str]:
    """What to tell the user about documents still made by an older ingest version.

    >>> for line in stale_report([DocumentInfo("a.html", "@library", 3, None),
    ...                           DocumentInfo("n.md", "ada", 2, None, "chat-1")], "docs"):
    ...     print(line)
    2 documents in 'docs' were made by an older extractor or chunker; their search quality
    improves once they are rebuilt:
      library  a.html: ingest its file again (python -m ingest --reindex PATH)
      ada      n.md: an upload; ada should upload it again
    """
    if not stale:
        return [f"Every document in '{collection}' is up to date."]
    lines = [
        f"{len(stale)} document{'s' if len(stale) != 1 else ''} in '{collection}' "
        f"{'were' if len(stale) != 1 else 'was'} made by an older extractor or chunker; their "
        "search quality",
        "improves once they are rebuilt:",
    ]
    for doc in stale:
        if doc.owner == LIBRARY_OWNER:
            lines.append(
                f"  library  {doc.source}: ingest its file again (python -m ingest --reindex PATH)"
            )
        else:
            lines.append(
                f"  {doc.owner:<8} {doc.source}: an upload; {doc.owner} should upload it again"
            )
    return lines
