"""``BasicTokenizer``: BPE on the raw bytes of the whole text, no split (minbpe's first step)."""

from __future__ import annotations

from zth.tokenizer.base import Tokenizer

__all__ = ["BasicTokenizer"]


class BasicTokenizer(Tokenizer):
    """Byte-level BPE without a regex split: merges may cross word and sentence boundaries.

    >>> tok = BasicTokenizer()
    >>> tok.train("aaabdaaabac", 256 + 3)
    >>> tok.encode("aaabdaaabac")
    [258, 100, 258, 97, 99]
    """

    def __init__(self) -> None:
        super().__init__(pattern=None)
