"""Milvus filter expressions that never paste user text into the expression.

Field names come from our code only; values always travel as parameters. Where the
backend supports filter templating (a Milvus server) the template and its parameters are
sent as they are; Milvus Lite (and Milvus before 2.5) rejects templates, so there each
value is rendered as one string or number literal whatever it contains. Milvus's string
literals know only five escapes (backslash, double quote, newline, carriage return, tab;
any other is a syntax error) and take every other character as it is, so those five are
escaped and the rest written raw. NUL and lone surrogates cannot travel in an expression
at all: they are refused with a clear `UnsupportedValue`.

>>> f = MilvusFilter.equals("source", 'a" or source != "b')
>>> f.render()
'source == "a\\\\" or source != \\\\"b"'
>>> f.as_kwargs(templating=True)
{'expr': 'source == {source}', 'filter_params': {'source': 'a" or source != "b'}}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from core.errors import UnsupportedValue

FilterValue = str | int | float | bool | list[str] | list[int]
MAX_QUERY_ROWS = 16384  # Milvus caps offset + limit of one query at this

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNSENDABLE = re.compile(r"[\x00\ud800-\udfff]")


def literal(value: FilterValue) -> str:
    """A Milvus literal for `value`: strings quoted and escaped, lists of them in
    brackets, numbers as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"unsupported filter value type: {type(value).__name__}")


def _string(value: str) -> str:
    bad = _UNSENDABLE.search(value)
    if bad is not None:
        raise UnsupportedValue(
            f"A name or filter value cannot contain the character U+{ord(bad.group()):04X}; "
            "no document name holds it."
        )
    return '"' + "".join(_ESCAPES.get(char, char) for char in value) + '"'


def _check_field(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a field name: {name!r}")
    return name


@dataclass(frozen=True)
class MilvusFilter:
    """A filter template with named parameters; combine with `&`."""

    template: str
    params: dict[str, FilterValue] = field(default_factory=dict)

    @classmethod
    def equals(cls, name: str, value: FilterValue, *, param: str | None = None) -> MilvusFilter:
        key = param or name
        return cls(f"{_check_field(name)} == {{{key}}}", {key: value})

    @classmethod
    def not_equals(cls, name: str, value: FilterValue, *, param: str | None = None) -> MilvusFilter:
        key = param or name
        return cls(f"{_check_field(name)} != {{{key}}}", {key: value})

    @classmethod
    def one_of(cls, name: str, values: list[str], *, param: str | None = None) -> MilvusFilter:
        key = param or f"{name}_list"
        return cls(f"{_check_field(name)} in {{{key}}}", {key: list(values)})

    @classmethod
    def all_of(cls, *filters: MilvusFilter | None) -> MilvusFilter | None:
        """The conjunction of the given filters (None where there is nothing to filter)."""
        present = [f for f in filters if f is not None]
        if not present:
            return None
        combined = present[0]
        for other in present[1:]:
            combined = combined & other
        return combined

    def __and__(self, other: MilvusFilter) -> MilvusFilter:
        clash = self.params.keys() & other.params.keys()
        if clash:
            raise ValueError(f"parameter names used twice: {sorted(clash)}")
        return MilvusFilter(
            f"({self.template}) and ({other.template})", {**self.params, **other.params}
        )

    def render(self) -> str:
        """The expression with every parameter replaced by its literal (for Milvus Lite)."""

        def substitute(match: re.Match[str]) -> str:
            return literal(self.params[match.group(1)])

        return _PLACEHOLDER.sub(substitute, self.template)

    def as_kwargs(self, *, templating: bool) -> dict[str, Any]:
        """Keyword arguments for langchain-milvus search / delete calls."""
        if templating:
            return {"expr": self.template, "filter_params": dict(self.params)}
        return {"expr": self.render()}

    def as_query_kwargs(self, *, templating: bool) -> dict[str, Any]:
        """Keyword arguments for pymilvus `query` / `delete` calls."""
        if templating:
            return {"filter": self.template, "filter_params": dict(self.params)}
        return {"filter": self.render()}


def search_kwargs(where: MilvusFilter | None, *, templating: bool) -> dict[str, Any]:
    """Keyword arguments for langchain-milvus searches and deletes (nothing: no filter)."""
    return {} if where is None else where.as_kwargs(templating=templating)


def query_kwargs(where: MilvusFilter | None, *, templating: bool) -> dict[str, Any]:
    """Keyword arguments for pymilvus `query` (an empty filter: every row)."""
    return {"filter": ""} if where is None else where.as_query_kwargs(templating=templating)
