"""Tokenizer files: a versioned ``.model`` (JSON) that ``load`` reads, and a ``.vocab`` for people.

The ``.model`` file holds exactly the defining state (pattern, byte ids, merges, special tokens),
so a loaded tokenizer encodes bit for bit as the saved one. Files are written atomically (a
temporary file renamed into place); a malformed file, or one of another format version, raises
``TokenizerFileError`` with a one-line message.
"""

from __future__ import annotations

import json
from pathlib import Path

import regex

from zth.storage import write_text_atomic
from zth.tokenizer.base import Tokenizer
from zth.tokenizer.bpe import render_token

__all__ = ["FORMAT", "VERSION", "TokenizerFileError", "save", "load"]

FORMAT = "zth.tokenizer"
VERSION = 1


class TokenizerFileError(ValueError):
    """A ``.model`` file is unreadable, malformed, or of an unsupported version."""


def save(tok: Tokenizer, prefix: str | Path) -> tuple[Path, Path]:
    """Write ``prefix.model`` and ``prefix.vocab``; returns both paths."""
    prefix = Path(prefix)
    model, vocab = prefix.with_name(prefix.name + ".model"), prefix.with_name(prefix.name + ".vocab")
    state = {
        "format": FORMAT, "version": VERSION, "type": type(tok).__name__, "pattern": tok.pattern,
        "byte_ids": None if tok.byte_ids == list(range(256)) else tok.byte_ids,
        "special_tokens": tok.special_tokens,
        "merges": [[a, b, idx] for (a, b), idx in sorted(tok.merges.items(), key=lambda kv: kv[1])],
    }
    body = ",\n".join(json.dumps([a, b, idx]) for a, b, idx in state.pop("merges"))
    header = json.dumps(state, ensure_ascii=False)[:-1]  # one merge a line keeps the file diffable
    write_text_atomic(model, f'{header}, "merges": [\n{body}\n]}}\n')

    children = {idx: pair for pair, idx in tok.merges.items()}
    lines = []
    for idx, token in sorted(tok.vocab.items()):
        if idx in children:
            a, b = children[idx]
            lines.append(f"[{render_token(tok.vocab[a])}][{render_token(tok.vocab[b])}] -> "
                         f"[{render_token(token)}] {idx}")
        else:
            lines.append(f"[{render_token(token)}] {idx}")
    lines += [f"[{s}] {idx} (special)" for s, idx in sorted(tok.special_tokens.items(), key=lambda kv: kv[1])]
    write_text_atomic(vocab, "\n".join(lines) + "\n")
    return model, vocab


def _classes() -> dict[str, type[Tokenizer]]:
    import zth.tokenizer as pkg
    return {c.__name__: c for c in (pkg.Tokenizer, pkg.BasicTokenizer, pkg.RegexTokenizer,
                                    pkg.GPT2Tokenizer, pkg.GPT4Tokenizer)}


def load(path: str | Path, expected: type[Tokenizer] = Tokenizer) -> Tokenizer:
    """Read a ``.model`` file into a tokenizer of the class that wrote it (a subclass of ``expected``)."""
    path = Path(path)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise TokenizerFileError(f"cannot read tokenizer file {path}: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TokenizerFileError(f"{path} is not a zth tokenizer file (not JSON: {e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TokenizerFileError(f"{path} is not a zth tokenizer file (no 'format': {FORMAT!r})")
    if state.get("version") != VERSION:
        raise TokenizerFileError(f"{path} has format version {state.get('version')!r}; this zth reads "
                                 f"version {VERSION}")
    cls = _classes().get(state.get("type"))
    if cls is None or not issubclass(cls, expected):
        raise TokenizerFileError(f"{path} holds a {state.get('type')!r}, not a {expected.__name__}")
    pattern, byte_ids = state.get("pattern"), state.get("byte_ids")
    specials, merges = state.get("special_tokens"), state.get("merges")

    def ints(xs) -> bool:
        return isinstance(xs, list) and all(isinstance(x, int) and x >= 0 for x in xs)

    for ok, what in [
        (pattern is None or isinstance(pattern, str), "'pattern' must be a string or null"),
        (byte_ids is None or ints(byte_ids) and len(set(byte_ids)) == 256 == len(byte_ids),
         "'byte_ids' must be null or 256 distinct ids"),
        (isinstance(specials, dict) and ints(list(specials.values())),
         "'special_tokens' must map strings to ids"),
        (isinstance(merges, list) and all(ints(m) and len(m) == 3 for m in merges),
         "'merges' must be a list of [a, b, id]"),
    ]:
        if not ok:
            raise TokenizerFileError(f"{path} is malformed: {what}")

    tok = cls.__new__(cls)
    tok.pattern, tok.special_tokens, tok.merges = pattern, {}, {}
    tok.byte_ids = list(range(256)) if byte_ids is None else list(byte_ids)
    known = set(tok.byte_ids)
    for a, b, idx in sorted(merges, key=lambda m: m[2]):
        if a not in known or b not in known or idx in known or (a, b) in tok.merges:
            raise TokenizerFileError(f"{path} is malformed (merge {a}, {b} -> {idx} refers to an "
                                     "unknown token or repeats a pair or an id)")
        tok.merges[(a, b)] = idx
        known.add(idx)
    try:
        tok._rebuild()
        tok.register_special_tokens(specials)
    except (ValueError, regex.error) as e:
        raise TokenizerFileError(f"{path} is malformed ({e})") from None
    return tok
