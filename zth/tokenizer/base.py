"""The ``Tokenizer`` every zth tokenizer is: byte-level BPE with an optional regex split and special tokens.

A tokenizer is fully described by

* ``pattern``: the regex that splits text into chunks before BPE (``None``: the text is one chunk);
* ``byte_ids``: the token id of each of the 256 single bytes (the identity for trained tokenizers;
  a permutation for GPT-2 and GPT-4, whose published ranks order the bytes differently);
* ``merges``: ``{(a, b): c}``, applied in the order of ``c``;
* ``special_tokens``: ``{"<|endoftext|>": id, ...}``, strings that map to one id without BPE.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Literal

import regex

from zth.tokenizer.bpe import encode_chunk
from zth.tokenizer.split import NEWER, as_tiktoken_splits
from zth.tokenizer.train import TRAINERS

__all__ = ["Tokenizer"]

Pair = tuple[int, int]
AllowedSpecial = Literal["all", "none", "none_raise"] | Collection[str]

_CACHE_MAX = 1 << 17  # encoded chunks remembered per tokenizer (repeated words are the common case)


class Tokenizer:
    """Byte-level BPE. Subclasses choose the split; this class trains, encodes, decodes, saves, loads."""

    def __init__(self, pattern: str | None = None) -> None:
        self.pattern = pattern
        self.byte_ids: list[int] = list(range(256))
        self.merges: dict[Pair, int] = {}
        self.special_tokens: dict[str, int] = {}
        self._rebuild()

    # ---------------------------------------------------------------- state
    def _rebuild(self) -> None:
        """Recompute everything derived from the four defining fields."""
        self._compiled = regex.compile(self.pattern) if self.pattern is not None else None
        self._compiled_exact = None  # the pattern with tiktoken's Unicode tables, compiled on first need
        vocab = {idx: bytes([b]) for b, idx in enumerate(self.byte_ids)}
        for (a, b), idx in sorted(self.merges.items(), key=lambda kv: kv[1]):
            vocab[idx] = vocab[a] + vocab[b]
        self.vocab: dict[int, bytes] = vocab
        self.inverse_special_tokens = {i: s for s, i in self.special_tokens.items()}
        # how to map a chunk's bytes to byte ids: as is (identity), with bytes.translate (a
        # permutation of 0..255, as GPT-2's and GPT-4's), or one by one (ids beyond 255)
        if self.byte_ids == list(range(256)):
            self._translate: bytes | bool | None = None
        else:
            self._translate = bytes(self.byte_ids) if max(self.byte_ids) < 256 else False
        self._cache: dict[str, list[int]] = {}

    @property
    def n_vocab(self) -> int:
        """One more than the largest token id (special tokens included)."""
        return max([*self.vocab, *self.special_tokens.values()]) + 1

    def register_special_tokens(self, special_tokens: Mapping[str, int]) -> None:
        """Add special tokens, e.g. ``{"<|endoftext|>": 100257}``; their ids must be unused."""
        taken = {}
        for token, idx in special_tokens.items():
            if not isinstance(token, str) or not token:
                raise ValueError(f"a special token must be a non-empty string, got {token!r}")
            if not isinstance(idx, int) or idx < 0:
                raise ValueError(f"special token {token!r}: id must be a non-negative integer, got {idx!r}")
            if idx in self.vocab or self.inverse_special_tokens.get(idx, token) != token or \
                    taken.setdefault(idx, token) != token:
                raise ValueError(f"special token {token!r}: id {idx} is already taken")
        self.special_tokens.update(special_tokens)
        self._rebuild()

    # ---------------------------------------------------------------- training
    def train(self, text: str, vocab_size: int, verbose: bool = False, trainer: str = "fast") -> None:
        """Learn ``vocab_size - 256`` merges from ``text`` (fewer if the text runs out of pairs).

        ``trainer`` is ``"fast"`` (default) or ``"reference"``; both learn the same merges (see
        :mod:`zth.tokenizer.train` for the tie-break rule). Special tokens are kept. An empty
        ``text`` raises ``ValueError`` (there is nothing to learn from).
        """
        if not isinstance(text, str) or not text:
            raise ValueError("cannot train a tokenizer on an empty text")
        if not isinstance(vocab_size, int) or vocab_size < 256:
            raise ValueError(f"vocab_size must be an integer >= 256 (the 256 bytes), got {vocab_size!r}")
        if trainer not in TRAINERS:
            raise ValueError(f"unknown trainer {trainer!r}; choose one of {', '.join(TRAINERS)}")
        chunks = self._split(_fix_surrogates(text))
        if trainer == "fast":
            data = {chunk.encode("utf-8"): n for chunk, n in Counter(chunks).items()}
        else:
            data = [chunk.encode("utf-8") for chunk in chunks]
        vocab = {i: bytes([i]) for i in range(256)}

        def report(i: int, pair: Pair, idx: int, count: int) -> None:
            vocab[idx] = vocab[pair[0]] + vocab[pair[1]]
            if verbose:
                print(f"merge {i + 1}/{vocab_size - 256}: {pair} -> {idx} ({vocab[idx]!r}) "
                      f"had {count} occurrences")

        merges = TRAINERS[trainer](data, vocab_size - 256, progress=report)
        taken = [s for s, i in self.special_tokens.items() if i < 256 + len(merges)]
        if taken:
            raise ValueError(f"special tokens {taken} have ids inside the trained vocabulary; "
                             "register special tokens after training, with ids >= vocab_size")
        self.byte_ids = list(range(256))
        self.merges = {pair: 256 + i for i, pair in enumerate(merges)}
        self._rebuild()
        if verbose and len(merges) < vocab_size - 256:
            print(f"stopped after {len(merges)} merges: every chunk is a single token")

    # ---------------------------------------------------------------- encoding
    def _split(self, text: str) -> list[str]:
        if self._compiled is None:
            return [text] if text else []
        if text.isascii() or NEWER.isdisjoint(set(text)):
            return self._compiled.findall(text)
        # the text holds letters or numbers newer than tiktoken's Unicode tables (see
        # zth.tokenizer.split): split by tiktoken's tables so that every string encodes as tiktoken's
        if self._compiled_exact is None:
            self._compiled_exact = regex.compile(as_tiktoken_splits(self.pattern))
        return self._compiled_exact.findall(text)

    def _encode_chunk(self, chunk: str) -> list[int]:
        data = chunk.encode("utf-8")
        if self._translate is None:
            ids = list(data)
        elif self._translate:
            ids = list(data.translate(self._translate))
        else:
            ids = [self.byte_ids[b] for b in data]
        return encode_chunk(ids, self.merges)

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` ignoring special tokens (they are encoded as ordinary text)."""
        return self._encode_ordinary(_fix_surrogates(text))

    def _encode_ordinary(self, text: str) -> list[int]:
        cache = self._cache
        out: list[int] = []
        for chunk in self._split(text):
            ids = cache.get(chunk)
            if ids is None:
                ids = self._encode_chunk(chunk)
                if len(chunk) < 64:
                    if len(cache) >= _CACHE_MAX:
                        cache.clear()
                    cache[chunk] = ids
            out.extend(ids)
        return out

    def encode(self, text: str, allowed_special: AllowedSpecial = "none_raise",
               disallowed_special: Literal["all"] | Collection[str] = "all") -> list[int]:
        """Encode ``text`` with tiktoken's rules for special tokens.

        ``allowed_special``: ``"all"``, a set of special tokens, ``"none_raise"`` (the default, as
        tiktoken's ``set()``) or ``"none"`` (special tokens are plain text and nothing raises).
        ``disallowed_special`` (default ``"all"``: every special token not allowed) lists the special
        tokens whose presence in ``text`` raises ``ValueError``; ``()`` encodes them as text.
        """
        if allowed_special == "none":
            allowed, disallowed_special = set(), ()
        elif allowed_special == "none_raise":
            allowed = set()
        elif allowed_special == "all":
            allowed = set(self.special_tokens)
        elif isinstance(allowed_special, str):
            raise ValueError(f"allowed_special={allowed_special!r} not understood; use 'all', 'none', "
                             "'none_raise' or a set of special tokens")
        else:
            allowed = set(allowed_special)
        if disallowed_special == "all":
            disallowed = set(self.special_tokens) - allowed
        else:
            disallowed = set(disallowed_special)
        if disallowed and (m := regex.search(_alternation(disallowed), text)):
            raise ValueError(f"text contains the disallowed special token {m.group()!r}; pass "
                             f"allowed_special={{{m.group()!r}}} to encode it as one token, or "
                             "disallowed_special=() to encode it as ordinary text")
        text = _fix_surrogates(text)
        allowed &= set(self.special_tokens)
        if not allowed:
            return self._encode_ordinary(text)
        out: list[int] = []
        for i, part in enumerate(regex.split(f"({_alternation(allowed)})", text)):
            if i % 2:
                out.append(self.special_tokens[part])
            elif part:
                out.extend(self._encode_ordinary(part))
        return out

    def decode_bytes(self, ids: list[int]) -> bytes:
        """The raw bytes of ``ids`` (special tokens as their UTF-8 text)."""
        parts = []
        for i in ids:
            if (b := self.vocab.get(i)) is not None:
                parts.append(b)
            elif (s := self.inverse_special_tokens.get(i)) is not None:
                parts.append(s.encode("utf-8"))
            else:
                raise ValueError(f"invalid token id {i!r}: not in this tokenizer's vocabulary")
        return b"".join(parts)

    def decode(self, ids: list[int], errors: str = "replace") -> str:
        """Text of ``ids``. As tiktoken's ``decode``, ``errors`` says what becomes of bytes that are
        not valid UTF-8: ``"replace"`` (default: U+FFFD), ``"strict"`` (``UnicodeDecodeError``),
        ``"ignore"``, or any other handler of ``bytes.decode``."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    # ---------------------------------------------------------------- files and tiktoken
    def save(self, prefix: str | Path) -> tuple[Path, Path]:
        """Write ``prefix.model`` (versioned, what ``load`` reads) and ``prefix.vocab`` (for people)."""
        from zth.tokenizer.files import save
        return save(self, prefix)

    def load(self, model_file: str | Path) -> None:
        """Load a ``.model`` file into this tokenizer, as the lecture does:
        ``tok = RegexTokenizer(); tok.load("x.model")``. The file must hold this class (or a subclass)."""
        from zth.tokenizer.files import load
        other = load(model_file, type(self))
        self.pattern, self.byte_ids = other.pattern, other.byte_ids
        self.merges, self.special_tokens = other.merges, other.special_tokens
        self._rebuild()

    @classmethod
    def from_file(cls, path: str | Path) -> Tokenizer:
        """A new tokenizer read from a ``.model`` file, of whichever class wrote it
        (``Tokenizer.from_file`` reads any zth tokenizer)."""
        from zth.tokenizer.files import load
        return load(path, cls)

    def to_tiktoken(self, name: str = "zth"):
        """A ``tiktoken.Encoding`` that encodes exactly as this tokenizer, at tiktoken's speed."""
        import tiktoken
        ranks: dict[bytes, int] = {}
        for idx, b in self.vocab.items():
            if ranks.setdefault(b, idx) != idx:
                raise ValueError(f"tokens {ranks[b]} and {idx} are both {b!r}; tiktoken needs unique tokens")
        return tiktoken.Encoding(name, pat_str=self.pattern if self.pattern is not None else r"[\s\S]+",
                                 mergeable_ranks=ranks, special_tokens=dict(self.special_tokens))


def _alternation(tokens: Collection[str]) -> str:
    """A regex matching any of ``tokens``, longest first."""
    return "|".join(regex.escape(t) for t in sorted(tokens, key=lambda t: (-len(t), t)))


def _fix_surrogates(text: str) -> str:
    """As tiktoken: lone surrogates (not encodable as UTF-8) become U+FFFD, valid pairs are joined."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
