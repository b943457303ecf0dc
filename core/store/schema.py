"""The collection layout (schema v2): fields, indexes, and what a collection records about
itself (schema version, embedding model and dimension) as collection properties.

Schema v2 has typed fields for everything the app filters or lists on, `owner` as the
partition key, and, where the backend supports it, an analyzed text field feeding a BM25
function into a sparse vector, so keyword search needs no rebuild. Extra loader metadata
(an HTML title, for example) lives in dynamic fields. Absent values are stored as
sentinels (page 0, chat_id ""): Milvus before 2.5 has no nullable fields.

All functions here block: call them in a worker thread.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException
from pymilvus.milvus_client import IndexParams

from core.errors import EmbeddingMismatch, SchemaOutdated
from core.knowledge import Capabilities

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
PRIMARY_FIELD = "pk"
TEXT_FIELD = "text"
VECTOR_FIELD = "vector"
SPARSE_FIELD = "sparse"
OWNER_FIELD = "owner"
BM25_FUNCTION = "text_bm25"
METRIC = "COSINE"


@dataclass(frozen=True)
class DenseIndex:
    """How the dense vectors are indexed, and the search parameters that go with it."""

    build: dict[str, Any]
    search: dict[str, Any]

    @property
    def index_type(self) -> str:
        return str(self.build["index_type"])


HNSW = DenseIndex(
    build={"index_type": "HNSW", "metric_type": METRIC, "params": {"M": 16, "efConstruction": 200}},
    search={"metric_type": METRIC, "params": {"ef": 128}},
)
FLAT = DenseIndex(
    build={"index_type": "FLAT", "metric_type": METRIC, "params": {}},
    search={"metric_type": METRIC, "params": {}},
)


def dense_index(capabilities: Capabilities) -> DenseIndex:
    """HNSW where the backend keeps it exact under selective filters (a Milvus server),
    else an exact FLAT index (Milvus Lite: see `Capabilities.filtered_ann`)."""
    return HNSW if capabilities.filtered_ann else FLAT


# Milvus Lite takes only SPARSE_INVERTED_INDEX / BM25 for a BM25 field (not AUTOINDEX).
BM25_INDEX: dict[str, Any] = {
    "index_type": "SPARSE_INVERTED_INDEX",
    "metric_type": "BM25",
    "params": {},
}
BM25_SEARCH: dict[str, Any] = {"metric_type": "BM25", "params": {}}
# Lucene's English stop words plus the words questions start with: without them, BM25 on
# a question ranks passages by "what", "is" and "the".
STOP_WORDS = (
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with what which who whom whose why when where "
    "how do does did can could should would i me my you your we our"
).split()
ANALYZER: dict[str, Any] = {
    "tokenizer": "standard",
    "filter": ["lowercase", {"type": "stop", "stop_words": STOP_WORDS}],
}

_VARCHAR_FIELDS = {"source": 4096, OWNER_FIELD: 512, "chat_id": 512, "file_hash": 64}
_INT_FIELDS = ("page", "chunk", "chunks", "added_at")
SCALAR_FIELDS = (*_VARCHAR_FIELDS, *_INT_FIELDS)

SCHEMA_KEY = "rag_chat.schema_version"
MODEL_KEY = "rag_chat.embedding_model"
DIM_KEY = "rag_chat.embedding_dim"


@dataclass(frozen=True)
class Layout:
    """What an existing collection is: its schema version, the embedding model and
    dimension that built it, and whether it carries the BM25 field."""

    schema_version: int
    embedding_model: str | None
    dim: int | None
    keyword_search: bool


def read_layout(info: dict[str, Any]) -> Layout:
    """The layout of a collection from `describe_collection`."""
    properties = info.get("properties") or {}
    fields = {spec.get("name"): spec for spec in info.get("fields", [])}
    if SCHEMA_KEY in properties:
        version = int(properties[SCHEMA_KEY])
    else:  # collections made before schema versions were recorded
        version = SCHEMA_VERSION if OWNER_FIELD in fields else 1
    dim = (fields.get(VECTOR_FIELD) or {}).get("params", {}).get("dim")
    functions = {fn.get("name") for fn in info.get("functions") or []}
    return Layout(
        schema_version=version,
        embedding_model=properties.get(MODEL_KEY),
        dim=int(dim) if dim is not None else None,
        keyword_search=SPARSE_FIELD in fields and BM25_FUNCTION in functions,
    )


def check_layout(layout: Layout, collection: str, model: str, dim: int) -> None:
    """Refuse a collection this version of the app cannot use, saying how to fix it."""
    if layout.schema_version < SCHEMA_VERSION:
        raise SchemaOutdated(
            f"Collection '{collection}' uses the old layout (schema v{layout.schema_version}); "
            f"this version of the app needs schema v{SCHEMA_VERSION} (document owners, typed "
            "fields, keyword search). Migrate it once, keeping every vector (nothing is "
            f"re-embedded):\n  python -m ingest --migrate --collection {collection}"
        )
    if layout.schema_version > SCHEMA_VERSION:
        raise SchemaOutdated(
            f"Collection '{collection}' was made by a newer version of this app (schema "
            f"v{layout.schema_version}); update the app to use it."
        )
    fix = (
        "Either set EMBEDDINGS / EMBEDDING_MODEL back to what built it, or rebuild the "
        f"collection: python -m ingest PATH --collection {collection} --drop"
    )
    if layout.embedding_model is not None and layout.embedding_model != model:
        raise EmbeddingMismatch(
            f"Collection '{collection}' was built with the embedding model "
            f"'{layout.embedding_model}' ({layout.dim} dimensions), but the configured model "
            f"is '{model}' ({dim} dimensions). {fix}"
        )
    if layout.dim is not None and layout.dim != dim:
        raise EmbeddingMismatch(
            f"Collection '{collection}' holds {layout.dim}-dimensional vectors, but the "
            f"configured embedding model '{model}' makes {dim}-dimensional ones. {fix}"
        )


def create_collection(
    client: MilvusClient,
    name: str,
    *,
    model: str,
    dim: int,
    capabilities: Capabilities,
    timeout: float,
) -> Layout:
    """Create a schema-v2 collection, indexed and loaded; returns its layout.

    Where BM25 is expected but the server dropped the function (Milvus before 2.5 accepts
    one and fails later), the collection is made again without it: dense search only.
    Another process creating the same collection first is not an error.
    """
    keyword = capabilities.bm25 and capabilities.sparse_vectors
    index = dense_index(capabilities)
    try:
        _create(client, name, model=model, dim=dim, index=index, keyword=keyword, timeout=timeout)
    except MilvusException as exc:
        if "already exist" not in str(exc.message):
            raise
        logger.info("collection %s was created by another process meanwhile", name)
    layout = read_layout(client.describe_collection(name, timeout=timeout))
    if keyword and not layout.keyword_search:
        logger.warning("%s kept no BM25 function: %s is dense-only", capabilities.label, name)
        client.drop_collection(name, timeout=timeout)
        _create(client, name, model=model, dim=dim, index=index, keyword=False, timeout=timeout)
        layout = read_layout(client.describe_collection(name, timeout=timeout))
    return layout


def _create(
    client: MilvusClient,
    name: str,
    *,
    model: str,
    dim: int,
    index: DenseIndex,
    keyword: bool,
    timeout: float,
) -> None:
    schema = client.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field(PRIMARY_FIELD, DataType.VARCHAR, is_primary=True, max_length=64)
    analyzer: dict[str, Any] = (
        {"enable_analyzer": True, "analyzer_params": ANALYZER} if keyword else {}
    )
    schema.add_field(TEXT_FIELD, DataType.VARCHAR, max_length=65535, **analyzer)
    schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dim)
    for field, length in _VARCHAR_FIELDS.items():
        schema.add_field(
            field, DataType.VARCHAR, max_length=length, is_partition_key=field == OWNER_FIELD
        )
    for field in _INT_FIELDS:
        schema.add_field(field, DataType.INT64)
    indexes = client.prepare_index_params()
    indexes.add_index(VECTOR_FIELD, **index.build)
    if keyword:
        schema.add_field(SPARSE_FIELD, DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name=BM25_FUNCTION,
                function_type=FunctionType.BM25,
                input_field_names=[TEXT_FIELD],
                output_field_names=[SPARSE_FIELD],
            )
        )
        indexes.add_index(SPARSE_FIELD, **BM25_INDEX)
    client.create_collection(name, schema=schema, consistency_level="Session", timeout=timeout)
    create_indexes(client, name, indexes, timeout)
    client.load_collection(name, timeout=timeout)
    client.alter_collection_properties(
        name,
        properties={SCHEMA_KEY: str(SCHEMA_VERSION), MODEL_KEY: model, DIM_KEY: str(dim)},
        timeout=timeout,
    )


def ensure_dense_index(
    client: MilvusClient, name: str, capabilities: Capabilities, timeout: float
) -> None:
    """Give an existing collection the exact index where the backend needs one (Milvus
    Lite: see `Capabilities.filtered_ann`), if it has another (made before its index
    became FLAT). Milvus drops an index only on a released collection, so it is
    released, re-indexed and loaded again: a one-off pause (0.5 s for 2,000 chunks). A
    server's index is left as it is: releasing a collection there would fail the
    searches of every other process using it."""
    if capabilities.filtered_ann:
        return
    wanted = dense_index(capabilities)
    current = client.describe_index(name, VECTOR_FIELD, timeout=timeout) or {}
    if current.get("index_type") == wanted.index_type:
        return
    logger.info(
        "re-indexing the dense vectors of %s: %s -> %s",
        name,
        current.get("index_type") or "none",
        wanted.index_type,
    )
    client.release_collection(name, timeout=timeout)
    if current:
        client.drop_index(name, VECTOR_FIELD, timeout=timeout)
    indexes = client.prepare_index_params()
    indexes.add_index(VECTOR_FIELD, **wanted.build)
    create_indexes(client, name, indexes, timeout)
    client.load_collection(name, timeout=timeout)


INDEX_FIRST_LOOK = 0.005
INDEX_LONGEST_WAIT = 0.5


def create_indexes(client: MilvusClient, name: str, indexes: IndexParams, timeout: float) -> None:
    """Create `indexes` on collection `name` and wait until each is built.

    pymilvus's own wait sleeps half a second before its first look at each index: three
    indexes were 1.5 s of the 1.6 s a new knowledge base took to open on Milvus Lite,
    which builds an empty collection's index at once. This wait looks after 5 ms, then
    backs off to pymilvus's half second."""
    client.create_index(name, indexes, timeout=timeout, sync=False)
    deadline = time.monotonic() + timeout
    for index in indexes:
        index_name = index.index_name or index.field_name
        pause = INDEX_FIRST_LOOK
        while True:
            time.sleep(pause)
            state = (client.describe_index(name, index_name, timeout=timeout) or {}).get("state")
            if state == "Finished":
                break
            if state == "Failed":
                raise MilvusException(message=f"building the index {index_name} of {name} failed")
            if time.monotonic() > deadline:
                raise MilvusException(
                    message=f"the index {index_name} of {name} was not built in {timeout:g} s"
                )
            pause = min(pause * 2, INDEX_LONGEST_WAIT)
