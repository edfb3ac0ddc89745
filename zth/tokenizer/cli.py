"""``python -m zth.tokenizer``: train a tokenizer on a text, or encode text with one.

    python -m zth.tokenizer train --data taylorswift --vocab-size 512 --out tok/taylor
    python -m zth.tokenizer train --input story.txt --vocab-size 4096 --split gpt2 --out tok/story
    python -m zth.tokenizer encode --model tok/taylor.model "hello world"
    python -m zth.tokenizer encode --model gpt4 --input story.txt --count

Bad input prints one line to stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["main"]

_SPLITS = {"none", "gpt2", "gpt4"}


class _Error(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, status 2, no usage dump
        raise _Error(message)


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m zth.tokenizer", description="Train or use a byte-level BPE tokenizer.")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
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
    en.add_argument("--input", type=Path, help="a UTF-8 text file")
    en.add_argument("--allowed-special", default="none_raise",
                    help="all, none, none_raise, or a comma-separated list of special tokens")
    en.add_argument("--count", action="store_true", help="print only the number of tokens")
    return ap


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _Error(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


def _train(args: argparse.Namespace) -> None:
    from zth import data
    from zth.tokenizer import GPT2_SPLIT_PATTERN, BasicTokenizer, RegexTokenizer

    text = _read(args.input) if args.input else data.text(args.data)
    tok = {"none": BasicTokenizer, "gpt2": lambda: RegexTokenizer(GPT2_SPLIT_PATTERN),
           "gpt4": RegexTokenizer}[args.split]()
    t0 = time.perf_counter()
    tok.train(text, args.vocab_size, trainer=args.trainer)
    seconds = time.perf_counter() - t0
    model, vocab = tok.save(args.out)
    print(f"trained {len(tok.merges)} merges on {len(text.encode('utf-8')):,} bytes in {seconds:.2f} s; "
          f"wrote {model} and {vocab}")


def _encode(args: argparse.Namespace) -> None:
    from zth.tokenizer import GPT2Tokenizer, GPT4Tokenizer, Tokenizer

    if (args.text is None) == (args.input is None):
        raise _Error("give the text either as an argument or with --input, not both")
    text = args.text if args.input is None else _read(args.input)
    pretrained = {"gpt2": GPT2Tokenizer, "gpt4": GPT4Tokenizer}
    tok = pretrained[args.model]() if args.model in pretrained else Tokenizer.load(args.model)
    allowed = args.allowed_special
    if allowed not in ("all", "none", "none_raise"):
        allowed = set(allowed.split(","))
    ids = tok.encode(text, allowed_special=allowed)
    print(len(ids) if args.count else json.dumps(ids))


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input)."""
    from zth.data import DataError

    try:
        args = _parser().parse_args(argv)
        (_train if args.command == "train" else _encode)(args)
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except (_Error, ValueError, DataError, OSError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return 0
