import pytest
from pydantic import ValidationError

from chains.memory import ChatMemory
from chains.options import SearchOptions


def test_memory_keeps_the_last_turns_only() -> None:
    memory = ChatMemory(max_turns=2)
    for i in range(5):
        memory.add(f"q{i}", f"a{i}")
    assert len(memory) == 2
    assert [m.content for m in memory.messages()] == ["q3", "a3", "q4", "a4"]
    assert [m.type for m in memory.messages()] == ["human", "ai", "human", "ai"]


def test_long_answers_are_trimmed_in_memory() -> None:
    memory = ChatMemory()
    memory.add("q", "x" * 10_000)
    assert len(str(memory.messages()[1].content)) == 2000


def test_options_defaults_and_bounds() -> None:
    options = SearchOptions()
    assert (options.search_type, options.k, options.fetch_k, options.lambda_mult) == (
        "hybrid",
        4,
        20,
        0.7,
    )
    assert (options.fusion, options.keyword_weight) == ("relative", 1.0)
    assert SearchOptions(k=10, fetch_k=5).fetch_k == 10
    bad_options: list[dict[str, object]] = [
        {"k": 0},
        {"k": 21},
        {"lambda_mult": 1.5},
        {"search_type": "bm25"},
        {"fusion": "max"},
    ]
    for bad in bad_options:
        with pytest.raises(ValidationError):
            SearchOptions(**bad)
