import pytest

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
