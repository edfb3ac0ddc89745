"""``RegexTokenizer``: split the text with a regex first, then BPE inside each chunk.

The split keeps BPE from merging across categories (letters, numbers, punctuation, whitespace),
so ``dog.``, ``dog!`` and ``dog?`` share the token ``dog`` instead of wasting three.
"""

from __future__ import annotations

from zth.tokenizer.base import Tokenizer

__all__ = ["GPT2_SPLIT_PATTERN", "GPT4_SPLIT_PATTERN", "RegexTokenizer"]

#: GPT-2's split, as published with GPT-2 (tiktoken's ``gpt2`` uses an equivalent, faster spelling).
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

#: GPT-4's split (tiktoken's ``cl100k_base``): case-insensitive contractions, numbers of at most
#: three digits, a non-letter may lead a word, newlines group with preceding whitespace and
#: punctuation, and trailing whitespace at the end of the text is one chunk (``\s++$``, since
#: tiktoken 0.8; the lecture's older spelling splits such whitespace differently).
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)


class RegexTokenizer(Tokenizer):
    """Byte-level BPE inside the chunks of a regex split (GPT-4's by default)."""

    def __init__(self, pattern: str | None = None) -> None:
        super().__init__(pattern=GPT4_SPLIT_PATTERN if pattern is None else pattern)
