"""Building a collection's indexes: waited for without pymilvus's half-second naps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymilvus import DataType, MilvusClient, MilvusException
from pymilvus.milvus_client import IndexParams

from core.store.schema import create_indexes


def two_indexes() -> IndexParams:
    indexes = MilvusClient.prepare_index_params()
    indexes.add_index("vector", index_type="FLAT", metric_type="COSINE")
    indexes.add_index("other", index_type="FLAT", metric_type="L2")
    return indexes


def test_every_index_is_built_and_the_collection_loads(tmp_path: Path) -> None:
    client = MilvusClient(uri=str(tmp_path / "milvus.db"))
    schema = client.create_schema(auto_id=False)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=8)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("other", DataType.FLOAT_VECTOR, dim=2)
    client.create_collection("c", schema=schema)
    try:
        create_indexes(client, "c", two_indexes(), timeout=10)
        assert [client.describe_index("c", f)["state"] for f in ("vector", "other")] == [
            "Finished",
            "Finished",
        ]
        client.load_collection("c", timeout=10)
        client.insert("c", [{"pk": "a", "vector": [1, 0, 0, 0], "other": [0, 1]}])
        found = client.search("c", [[1, 0, 0, 0]], anns_field="vector", limit=1)
        assert [hit["pk"] for hit in found[0]] == ["a"]
    finally:
        client.close()


class IndexStates:
    """A client whose indexes report the given states, one per look, then the last."""

    def __init__(self, *states: str) -> None:
        self.states = list(states)
        self.looks: list[str] = []

    def create_index(self, name: str, indexes: IndexParams, **kwargs: Any) -> None:
        assert kwargs["sync"] is False  # never pymilvus's own wait

    def describe_index(self, name: str, index_name: str, **kwargs: Any) -> dict[str, str]:
        self.looks.append(index_name)
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"state": state}


def test_an_index_still_building_is_waited_for() -> None:
    client = IndexStates("InProgress", "InProgress", "Finished")
    create_indexes(client, "c", two_indexes(), timeout=10)
    assert client.looks == ["vector", "vector", "vector", "other"]


def test_a_failed_build_is_an_error() -> None:
    with pytest.raises(MilvusException, match="building the index vector of c failed"):
        create_indexes(IndexStates("Failed"), "c", two_indexes(), timeout=10)


def test_a_build_that_never_ends_times_out() -> None:
    with pytest.raises(MilvusException, match="was not built in 0.05 s"):
        create_indexes(IndexStates("InProgress"), "c", two_indexes(), timeout=0.05)
