"""GPT-2 and GPT-4 as zth tokenizers, rebuilt from the ranks tiktoken publishes.

tiktoken stores a vocabulary as ``{token bytes: rank}`` and encodes by repeatedly merging the
adjacent pair whose concatenation has the lowest rank. Our tokenizers store merges ``(a, b) -> c``
instead, so we recover them: for every multi-byte token, run tiktoken's rule on its own bytes
with only the lower ranks allowed; it stops at exactly two parts, and those two are the pair.
The single bytes are not in byte order (ranks 0..255 list the printable bytes first), so the
byte ids are a permutation, which ``Tokenizer`` applies before merging.
"""

from __future__ import annotations

from functools import cache

from zth.tokenizer.regex_tokenizer import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, RegexTokenizer

__all__ = ["GPT2Tokenizer", "GPT4Tokenizer", "bpe", "recover_merges"]

Pair = tuple[int, int]


def bpe(ranks: dict[bytes, int], token: bytes, max_rank: int | None = None) -> list[bytes]:
    """tiktoken's rule in Python: merge the lowest-ranked adjacent pair until none is below ``max_rank``."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best, best_rank = None, None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best_rank is None or rank < best_rank):
                best, best_rank = i, rank
        if best is None or (max_rank is not None and best_rank >= max_rank):
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return parts


def recover_merges(ranks: dict[bytes, int]) -> tuple[list[int], dict[Pair, int]]:
    """From tiktoken's ``{bytes: rank}``, the byte ids (``ranks[bytes([b])]``) and the merges."""
    byte_ids = [ranks[bytes([b])] for b in range(256)]
    merges: dict[Pair, int] = {}
    for token, rank in ranks.items():
        if len(token) == 1:
            continue
        parts = bpe(ranks, token, max_rank=rank)
        if len(parts) != 2:
            raise ValueError(f"token {token!r} (rank {rank}) is not the merge of two lower-ranked tokens")
        merges[(ranks[parts[0]], ranks[parts[1]])] = rank
    return byte_ids, merges


@cache
def _tiktoken_state(name: str) -> tuple[list[int], dict[Pair, int], dict[str, int], str]:
    """(byte ids, merges, special tokens, tiktoken's pattern) of a tiktoken encoding, computed once."""
    from tiktoken_ext import openai_public  # ships with tiktoken; uses tiktoken's download cache

    from zth.data import TIKTOKEN_FILES, fetch_tiktoken

    if name in TIKTOKEN_FILES:  # the files are in tiktoken's cache, or one clear DataError
        fetch_tiktoken(name)
    spec = getattr(openai_public, name)()
    byte_ids, merges = recover_merges(spec["mergeable_ranks"])
    return byte_ids, merges, spec["special_tokens"], spec["pat_str"]


class _TiktokenTokenizer(RegexTokenizer):
    """A ``RegexTokenizer`` whose state comes from one of tiktoken's encodings."""

    encoding_name = ""

    def __init__(self, pattern: str) -> None:
        super().__init__(pattern)
        byte_ids, merges, special_tokens, _ = _tiktoken_state(self.encoding_name)
        self.byte_ids, self.merges = list(byte_ids), dict(merges)
        self._rebuild()
        self.register_special_tokens(special_tokens)

    def train(self, text: str, vocab_size: int, verbose: bool = False, trainer: str = "fast") -> None:
        """Pretrained tokenizers are not trained; train a ``RegexTokenizer`` with the same pattern."""
        raise NotImplementedError(f"{type(self).__name__} is pretrained; train "
                                  "RegexTokenizer(pattern) instead")


class GPT2Tokenizer(_TiktokenTokenizer):
    """GPT-2's tokenizer (tiktoken ``gpt2``): 50,257 tokens, ``<|endoftext|>`` = 50256."""

    encoding_name = "gpt2"

    def __init__(self) -> None:
        super().__init__(GPT2_SPLIT_PATTERN)


class GPT4Tokenizer(_TiktokenTokenizer):
    """GPT-4's tokenizer (tiktoken ``cl100k_base``): 100,256 merges/bytes plus 5 special tokens."""

    encoding_name = "cl100k_base"

    def __init__(self) -> None:
        super().__init__(GPT4_SPLIT_PATTERN)
