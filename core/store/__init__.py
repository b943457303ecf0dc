"""The one door to Milvus: nothing outside this package imports pymilvus or
langchain_milvus.

- `connection`: connection arguments, errors on open, the capability probe;
- `schema`: the collection layout (schema v2) and what a collection records about itself;
- `views`: opening a collection and setting langchain-milvus up over it (dense and BM25);
- `filters`: filter expressions that never paste user text into the expression;
- `records`: app records to and from Milvus rows, scope and document filters;
- `coalescing`: langchain-milvus's store with concurrent calls batched;
- `search`: the dense and BM25 routes, their fusion, MMR over the fused candidates;
- `knowledge_base`: `MilvusKnowledgeBase`, the handle the app uses;
- `migration`: copying a schema-v1 collection into schema v2 without re-embedding.

Importing it imports pymilvus, which validates `MILVUS_URI` on import: validate the
settings first (`core.settings.load_settings`).
"""

from core.store.knowledge_base import MilvusKnowledgeBase

__all__ = ["MilvusKnowledgeBase"]
