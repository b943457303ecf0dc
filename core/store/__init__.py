"""The one door to Milvus: nothing outside this package imports pymilvus or
langchain_milvus.

- `connection`: connection arguments, errors on open, the capability probe;
- `schema`: the collection layout (schema v2) and what a collection records about itself;
- `filters`: filter expressions that never paste user text into the expression;
- `coalescing`: langchain-milvus's store with concurrent calls batched;
- `knowledge_base`: `MilvusKnowledgeBase`, the handle the app uses;
- `migration`: copying a schema-v1 collection into schema v2 without re-embedding.

Importing it imports pymilvus, which validates `MILVUS_URI` on import: validate the
settings first (`core.settings.load_settings`).
"""

from core.store.knowledge_base import MilvusKnowledgeBase

__all__ = ["MilvusKnowledgeBase"]
