"""``python -m zth.tokenizer`` (``zth tokenizer``): train a tokenizer, encode text, decode ids.

    zth tokenizer train --data taylorswift --vocab-size 512 --out tok/taylor
    zth tokenizer train --input story.txt --vocab-size 4096 --split gpt2 --out tok/story
    zth tokenizer encode --model tok/taylor.model "hello world"          # [104, 101, ...]
    zth tokenizer encode --model gpt4 --input story.txt --count
    zth tokenizer decode --model gpt4 15339 1917                          # hello world
    zth tokenizer encode --model gpt2 --input a.txt | zth tokenizer decode --model gpt2 --input - > b.txt

``encode`` prints a JSON list; ``decode`` reads ids as arguments or from ``--input`` (a JSON list
or ids separated by spaces or commas; ``-`` is stdin) and writes the text exactly, so a file that
goes through ``encode`` and ``decode`` comes back byte for byte. Bad input prints one line to stderr
and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from zth.command import ArgumentParser, fail, parse

__all__ = ["main"]

PROG = "python -m zth.tokenizer"
_SPLITS = {"none", "gpt2", "gpt4"}
_ERRORS = ["replace", "strict", "ignore", "backslashreplace", "surrogateescape"]


class _Error(Exception):
    pass


def _parser(prog: str) -> argparse.ArgumentParser:
    ap = ArgumentParser(prog=prog, description="Train a byte-level BPE tokenizer; encode and decode.")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    tr = sub.add_parser("train", help="learn merges from a text and save PREFIX.model / PREFIX.vocab")
    src = tr.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", type=Path, help="a UTF-8 text file")
    src.add_argument("--data", help="a zth.data dataset name, e.g. taylorswift")
    tr.add_argument("--vocab-size", type=int, required=True)
    tr.add_argument("--split", choices=sorted(_SPLITS), default="gpt4",
                    help="regex split before BPE (none: BasicTokenizer)")
    tr.add_argument("--trainer", choices=["fast", "reference"], default="fast")
    tr.add_argument("--out", type=Path, required=True, help="output prefix")
    en = sub.add_parser("encode", help="print the token ids of a text (JSON list)")
    en.add_argument("--model", required=True, help="a .model file, or gpt2 / gpt4")
    en.add_argument("text", nargs="?", help="the text (or use --input)")
    en.add_argument("--input", help="a UTF-8 text file (- for stdin)")
    en.add_argument("--allowed-special", default="none_raise",
                    help="all, none, none_raise, or a comma-separated list of the model's special tokens")
    en.add_argument("--count", action="store_true", help="print only the number of tokens")
    de = sub.add_parser("decode", help="print the text of token ids")
    de.add_argument("--model", required=True, help="a .model file, or gpt2 / gpt4")
    de.add_argument("ids", nargs="*", help="token ids (or use --input)")
    de.add_argument("--input", help="a file of ids: JSON list, or split by spaces/commas (- is stdin)")
    de.add_argument("--errors", choices=_ERRORS, default="replace",
                    help="bytes that are not UTF-8: replace (U+FFFD, default), strict (an error), ignore, "
                         "(surrogateescape keeps them, so the output is byte-exact)")
    return ap


def _read(path: str) -> str:
    """A file's text exactly (no newline translation); ``-`` reads stdin."""
    try:
        if path == "-":
            return sys.stdin.buffer.read().decode("utf-8")
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise _Error(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


def _tokenizer(model: str):
    from zth.tokenizer import GPT2Tokenizer, GPT4Tokenizer, Tokenizer

    pretrained = {"gpt2": GPT2Tokenizer, "gpt4": GPT4Tokenizer}
    return pretrained[model]() if model in pretrained else Tokenizer.from_file(model)


def _train(args: argparse.Namespace) -> None:
    from zth import data
    from zth.tokenizer import GPT2_SPLIT_PATTERN, BasicTokenizer, RegexTokenizer

    text = _read(str(args.input)) if args.input else data.text(args.data)
    source = args.input or args.data
    if not text.strip():
        raise _Error(f"{source} is empty: there is nothing to learn merges from")
    tok = {"none": BasicTokenizer, "gpt2": lambda: RegexTokenizer(GPT2_SPLIT_PATTERN),
           "gpt4": RegexTokenizer}[args.split]()
    t0 = time.perf_counter()
    tok.train(text, args.vocab_size, trainer=args.trainer)
    seconds = time.perf_counter() - t0
    if not tok.merges and args.vocab_size > 256:
        raise _Error(f"{source} has no pair of tokens to merge (every chunk is one byte); "
                     "train on a longer text")
    model, vocab = tok.save(args.out)
    print(f"trained {len(tok.merges)} merges on {len(text.encode('utf-8')):,} bytes in {seconds:.2f} s; "
          f"wrote {model} and {vocab}")


def _encode(args: argparse.Namespace) -> None:
    if (args.text is None) == (args.input is None):
        raise _Error("give the text either as an argument or with --input, not both")
    text = args.text if args.input is None else _read(args.input)
    tok = _tokenizer(args.model)
    allowed = args.allowed_special
    if allowed not in ("all", "none", "none_raise"):
        allowed = {s for s in allowed.split(",") if s}
        unknown = sorted(allowed - set(tok.special_tokens))
        if unknown or not allowed:
            known = ", ".join(tok.special_tokens) or "none"
            raise _Error(f"--allowed-special: {', '.join(unknown) or repr(args.allowed_special)} is not a "
                         f"special token of {args.model} (its special tokens: {known}; or use all, none, "
                         "none_raise)")
    ids = tok.encode(text, allowed_special=allowed)
    print(len(ids) if args.count else json.dumps(ids))


def _parse_ids(words: list[str]) -> list[int]:
    ids = []
    for w in words:
        try:
            i = int(w)
        except ValueError:
            raise _Error(f"not a token id: {w!r}") from None
        if i < 0:
            raise _Error(f"not a token id: {w!r}")
        ids.append(i)
    return ids


def _decode(args: argparse.Namespace) -> None:
    if bool(args.ids) == (args.input is not None):
        raise _Error("give the ids either as arguments or with --input, not both")
    if args.input is None:
        words = args.ids
    else:
        raw = _read(args.input).strip()
        if raw.startswith("["):
            try:
                listed = json.loads(raw)
            except json.JSONDecodeError as e:
                raise _Error(f"{args.input} is not a JSON list of ids ({e})") from None
            words = [str(x) if isinstance(x, int) else repr(x) for x in listed]
        else:
            words = raw.replace(",", " ").split()
    tok = _tokenizer(args.model)
    try:
        text = tok.decode(_parse_ids(words), errors=args.errors)
    except UnicodeDecodeError as e:
        raise _Error(f"the ids decode to bytes that are not UTF-8 ({e.reason} at byte {e.start}); "
                     "use --errors replace or surrogateescape") from None
    if sys.stdout.isatty() and not text.endswith("\n"):
        text += "\n"
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8", errors="surrogateescape"))
    sys.stdout.buffer.flush()


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input)."""
    from zth.data import DataError

    prog = prog or PROG
    args = parse(_parser(prog), sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args
    try:
        {"train": _train, "encode": _encode, "decode": _decode}[args.command](args)
    except (_Error, ValueError, DataError, OSError) as e:
        return fail(prog, e)
    return 0
