import pytest

from core.errors import UnsupportedValue
from core.store.filters import MilvusFilter, literal


def test_literals_escape_quotes_and_backslashes() -> None:
    assert literal('a"b') == '"a\\"b"'
    assert literal("back\\slash") == '"back\\\\slash"'
    assert literal(3) == "3"
    assert literal(True) == "true"
    assert literal(["x", 'y"']) == '["x", "y\\""]'


def test_injection_attempt_stays_one_literal() -> None:
    attack = 'x" or source != "'
    expr = MilvusFilter.equals("source", attack).render()
    assert expr == 'source == "x\\" or source != \\""'


def test_templating_keeps_values_out_of_the_expression() -> None:
    f = MilvusFilter.equals("source", "a.pdf") & MilvusFilter.not_equals("file_hash", "h")
    kwargs = f.as_kwargs(templating=True)
    assert kwargs == {
        "expr": "(source == {source}) and (file_hash != {file_hash})",
        "filter_params": {"source": "a.pdf", "file_hash": "h"},
    }
    assert f.as_query_kwargs(templating=False) == {
        "filter": '(source == "a.pdf") and (file_hash != "h")'
    }


def test_one_of_renders_a_list() -> None:
    f = MilvusFilter.one_of("source", ["a", 'b"'])
    assert f.render() == 'source in ["a", "b\\""]'


def test_field_names_are_checked() -> None:
    with pytest.raises(ValueError, match="not a field name"):
        MilvusFilter.equals("source == 'x' or 1", "y")


def test_parameter_names_must_not_clash() -> None:
    with pytest.raises(ValueError, match="used twice"):
        _ = MilvusFilter.equals("source", "a") & MilvusFilter.equals("source", "b")


def test_control_characters_use_only_the_escapes_milvus_knows() -> None:
    assert literal("a\nb\rc\td") == '"a\\nb\\rc\\td"'
    assert literal("a\x01\x0c\x7f\u2028b") == '"a\x01\x0c\x7f\u2028b"'  # raw, not \u escapes
    assert literal(["x\n", "y"]) == '["x\\n", "y"]'


@pytest.mark.parametrize("value", ["a\x00b", "a\ud800b"])
def test_characters_that_cannot_travel_are_refused(value: str) -> None:
    with pytest.raises(UnsupportedValue, match="cannot contain the character"):
        MilvusFilter.equals("source", value).render()
