"""Telling look-alike document names apart.

`fаq.txt` with a Cyrillic `а` and `faq.txt` look the same on screen, so a list of
documents could show two indistinguishable entries (or a planted one posing as another).
A name whose stem mixes letters from more than one script (an extension in another
script is normal: `отчёт.pdf`) is flagged and also shown with its non-ASCII characters
spelled out, e.g. `f[U+0430]q.txt`.
"""

from __future__ import annotations

from confusable_homoglyphs import categories

_NEUTRAL = frozenset({"COMMON", "INHERITED"})


def mixed_scripts(name: str) -> list[str]:
    """The scripts the letters of `name`'s stem come from, when there is more than one
    (else an empty list)."""
    stem = name.rpartition(".")[0] or name
    scripts = sorted({categories.alias(char) for char in stem if char.isalpha()} - _NEUTRAL)
    return scripts if len(scripts) > 1 else []


def escaped(name: str) -> str:
    """`name` with every non-ASCII character spelled out as `[U+XXXX]`."""
    return "".join(char if char.isascii() else f"[U+{ord(char):04X}]" for char in name)
