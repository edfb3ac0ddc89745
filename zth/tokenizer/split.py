r"""The regex split as tiktoken runs it: ``\p{L}`` and ``\p{N}`` by tiktoken's Unicode tables.

A split pattern's letter and number classes depend on the Unicode tables of the engine that runs
it. tiktoken's engine (Rust's ``regex``) uses Unicode 16.0; Python's ``regex`` module follows newer
releases, so a letter assigned since (e.g. U+3E75E) is a letter to one and "other" to the other,
and ``"\U0003e75e's"`` splits, hence encodes, differently. ``as_tiktoken_splits`` rewrites a
pattern so that the ``regex`` module classes every code point as tiktoken does.
"""

from __future__ import annotations

__all__ = ["NEWER", "NEWER_LETTERS", "NEWER_NUMBERS", "as_tiktoken_splits"]

#: Letters (``\p{L}``) and numbers (``\p{N}``) that the ``regex`` module's Unicode tables know and
#: tiktoken's do not. tiktoken splits with Rust's regex tables of Unicode 16.0; ``regex`` follows
#: newer Unicode releases, which assign new letters (e.g. U+3E75E). Probing tiktoken over every code
#: point found exactly these (``tests/test_tokenizer.py`` repeats the probe against tiktoken).
NEWER_LETTERS = (
    "558 58B-58C 88F C5C CDC 208F 209D-209F A7CE-A7CF A7D2 A7D4 A7DD A7E2 A7F1 AB6C-AB6D 107BB-107BF "
    "10940-10959 10EC5-10EC7 10ED9-10EEE 11B0A 11DB0-11DDB 11DF1 16EA0-16EB8 16EBB-16ED3 16FF2-16FF3 "
    "187F8-187FF 18CD6-18CDA 18D09-18D20 18D80-18DF2 18E00-19191 191A0-191D2 1B123-1B128 1B168 1D6A6 "
    "1DF1F-1DF24 1DF2B-1DF81 1DF90-1DF96 1DFCD-1DFFF 1E6C0-1E6DE 1E6E0-1E6E2 1E6E4-1E6E5 1E6E7-1E6ED "
    "1E6F0-1E6F4 1E6FE-1E6FF 2B73A-2B73F 2B81E 2CEA2-2CEAD 323B0-33479 3D000-3FC3F"
)
NEWER_NUMBERS = "11DE0-11DE9 1246F 12475-1247F 12550-12686 16FF4-16FF6"


def _class_items(ranges: str) -> str:
    """``"558 58B-58C"`` as regex class items ``\\U00000558\\U0000058b-\\U0000058c``."""
    return "".join("-".join(f"\\U{int(c, 16):08x}" for c in r.split("-")) for r in ranges.split())


_NEWER = {"L": _class_items(NEWER_LETTERS), "N": _class_items(NEWER_NUMBERS)}


def _chars(ranges: str) -> frozenset[str]:
    out = set()
    for r in ranges.split():
        lo, _, hi = r.partition("-")
        out.update(chr(c) for c in range(int(lo, 16), int(hi or lo, 16) + 1))
    return frozenset(out)


#: Every code point of ``NEWER_LETTERS`` and ``NEWER_NUMBERS``. A text without any of them splits
#: the same under either table, so the tokenizer runs the faster, unrewritten pattern on it.
NEWER: frozenset[str] = _chars(NEWER_LETTERS + " " + NEWER_NUMBERS)


def as_tiktoken_splits(pattern: str) -> str:
    r"""``pattern`` with ``\p{L}`` and ``\p{N}`` limited to the code points tiktoken's tables class so.

    Outside a class, ``\p{L}`` becomes ``[^\P{L}<newer letters>]``; a class that names ``\p{L}`` or
    ``\p{N}`` becomes ``(?:[^...]|[<newer>])`` when negated (the newer ones are then "other"
    characters, as in tiktoken) and ``(?:(?![<newer>])[...])`` otherwise. Other syntax is kept.
    """
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            esc = pattern[i:i + 5]
            if esc in (r"\p{L}", r"\p{N}"):
                out.append(f"[^\\P{{{esc[3]}}}{_NEWER[esc[3]]}]")
                i += 5
            else:
                out.append(pattern[i:i + 2])
                i += 2
            continue
        if c != "[":
            out.append(c)
            i += 1
            continue
        j = i + 1 + (pattern[i + 1:i + 2] == "^")
        j += pattern[j:j + 1] == "]"  # a leading ] is literal
        while j < n and pattern[j] != "]":
            j += 2 if pattern[j] == "\\" else 1
        cls = pattern[i:j + 1]
        newer = "".join(_NEWER[k] for k in "LN" if f"\\p{{{k}}}" in cls)
        if not newer:
            out.append(cls)
        elif cls.startswith("[^"):
            out.append(f"(?:{cls}|[{newer}])")
        else:
            out.append(f"(?:(?![{newer}]){cls})")
        i = j + 1
    return "".join(out)
