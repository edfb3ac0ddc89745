"""A llama2.c-style vocabulary around a BPE tokenizer trained by ``zth.tokenizer``.

llama2.c's custom TinyStories tokenizers are small SentencePiece BPE models whose ids start with
``<unk>`` = 0, ``<s>`` (BOS) = 1, ``</s>`` (EOS) = 2, then the 256 byte-fallback tokens. We get
the same layout from a byte-level BPE: the three special tokens first, then the BPE's ids
shifted by three (its 256 byte tokens, then its merges). Every story starts with BOS, and a
sampled story ends when the model emits the next BOS, as in llama2.c.

For ``tokenizer.bin`` each token becomes its bytes and a score: llama2.c's encoder merges the
adjacent pair of highest score, so a merge learned earlier gets a higher score (``-rank``).
Byte tokens that are not printable ASCII are written as ``<0xXX>``, the spelling llama2.c
decodes back into a raw byte.
"""

from __future__ import annotations

import os
import re

from zth.tokenizer import RegexTokenizer, Tokenizer

__all__ = ["BOS", "EOS", "SPECIALS", "UNK", "StoryTokenizer", "decode_pieces"]

SPECIALS = ("<unk>", "<s>", "</s>")
UNK, BOS, EOS = 0, 1, 2
_BIN_SPECIALS = (b"<unk>", b"\n<s>\n", b"\n</s>\n")  # how llama2.c's export spells them
_BYTE_PIECE = re.compile(rb"<0x([0-9A-F]{2})>")


def _byte_piece(b: int) -> bytes:
    return bytes([b]) if 0x20 <= b < 0x7F or b in (0x09, 0x0A, 0x0D) else f"<0x{b:02X}>".encode()


class StoryTokenizer:
    """``<unk>``, ``<s>``, ``</s>``, then a zth byte-level BPE tokenizer's ids shifted by 3."""

    offset = len(SPECIALS)

    def __init__(self, bpe: Tokenizer):
        if bpe.byte_ids != list(range(256)) or bpe.special_tokens:
            raise ValueError("StoryTokenizer needs a trained zth tokenizer without special tokens")
        self.bpe = bpe

    @classmethod
    def train(cls, text: str, vocab_size: int = 512, pattern: str | None = None) -> StoryTokenizer:
        """Train a ``RegexTokenizer`` (GPT-4's split unless ``pattern``) to ``vocab_size`` ids in all."""
        if vocab_size < 256 + cls.offset:
            raise ValueError(f"vocab_size must be at least {256 + cls.offset}, got {vocab_size}")
        bpe = RegexTokenizer(pattern)
        bpe.train(text, vocab_size - cls.offset)
        return cls(bpe)

    @property
    def vocab_size(self) -> int:
        return self.bpe.n_vocab + self.offset

    def encode(self, text: str, bos: bool = True, eos: bool = False) -> list[int]:
        """Token ids of ``text``, with BOS first (and EOS last) when asked."""
        ids = [i + self.offset for i in self.bpe.encode_ordinary(text)]
        return [BOS] * bos + ids + [EOS] * eos

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``; special tokens are dropped."""
        return self.bpe.decode([i - self.offset for i in ids if i >= self.offset])

    def pieces(self) -> tuple[list[bytes], list[float]]:
        """Every token's bytes and score, in id order, as llama2.c's ``tokenizer.bin`` stores them."""
        pieces, scores = list(_BIN_SPECIALS), [0.0] * self.offset
        for i in range(self.bpe.n_vocab):
            token = self.bpe.vocab[i]
            pieces.append(_byte_piece(token[0]) if i < 256 else token)
            scores.append(0.0 if i < 256 else float(-(i - 256)))
        return pieces, scores

    def save(self, prefix: str | os.PathLike) -> None:
        """Save the inner BPE tokenizer (``prefix.model`` and ``prefix.vocab``)."""
        self.bpe.save(prefix)

    @classmethod
    def load(cls, path: str | os.PathLike) -> StoryTokenizer:
        """Load what ``save`` wrote (the ``.model`` file)."""
        return cls(Tokenizer.from_file(path))


def decode_pieces(pieces: list[bytes], ids: list[int]) -> bytes:
    """Decode ``ids`` with ``tokenizer.bin`` pieces the way llama2.c prints them.

    ``<0xXX>`` pieces become the raw byte; BOS and EOS print nothing; a leading space right after
    BOS is dropped, as llama2.c does for SentencePiece's dummy prefix.
    """
    out, prev = [], None
    for i in ids:
        if i in (BOS, EOS):
            prev = i
            continue
        piece = pieces[i]
        if prev == BOS and piece.startswith(b" "):
            piece = piece[1:]
        if m := _BYTE_PIECE.fullmatch(piece):
            piece = bytes([int(m.group(1), 16)])
        out.append(piece)
        prev = i
    return b"".join(out)
