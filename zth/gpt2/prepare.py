"""Tokenize text into uint16 GPT-2 token shards: FineWeb-Edu (streamed) or any local text.

::

    python -m zth.gpt2.prepare --text shakespeare --out runs/shakespeare --val-tokens 32768
    python -m zth.gpt2.prepare --text notes.txt --docs blank --out runs/notes
    python -m zth.gpt2.prepare --fineweb sample-10BT --out fineweb10B      # needs internet

Every document is prefixed with ``<|endoftext|>`` (GPT-2's document separator) and encoded
with tiktoken's ``gpt2`` encoding in worker processes. ``--text`` takes a ``zth.data`` name
or a file path. The first ``--val-tokens`` tokens form the validation shard (shard 0).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from zth import data
from zth.command import ArgumentParser, fail, parse
from zth.gpt2.shards import SHARD_TOKENS, write_shards

FINEWEB = "HuggingFaceFW/fineweb-edu"
_enc = None


def encode_document(text: str) -> np.ndarray:
    """``<|endoftext|>`` followed by the GPT-2 tokens of ``text``, as uint16."""
    global _enc
    if _enc is None:  # once per worker process
        _enc = data.tiktoken_encoding("gpt2")
    return np.array([_enc.eot_token, *_enc.encode_ordinary(text)], dtype=np.uint16)


def text_documents(text: str, docs: str = "whole") -> list[str]:
    """Split ``text`` into documents: ``whole`` (one), ``line`` (one per line) or ``blank``
    (separated by blank lines). Empty documents are dropped."""
    if docs == "whole":
        parts = [text]
    elif docs == "line":
        parts = text.split("\n")
    elif docs == "blank":
        parts = text.split("\n\n")
    else:
        raise ValueError(f"docs must be 'whole', 'line' or 'blank', got {docs!r}")
    return [p for p in (p.strip("\n") for p in parts) if p.strip()]


def fineweb_documents(name: str = "sample-10BT") -> Iterator[str]:
    """Stream FineWeb-Edu's texts with HuggingFace ``datasets`` (needs the package and internet)."""
    try:
        from datasets import load_dataset
    except ImportError:
        raise ValueError("FineWeb-Edu needs the 'datasets' package: pip install datasets") from None
    for row in load_dataset(FINEWEB, name=name, split="train", streaming=True):
        yield row["text"]


def tokenize(documents: Iterable[str], workers: int = 1) -> Iterator[np.ndarray]:
    """Token arrays of ``documents`` in order, encoded by ``workers`` processes."""
    if workers <= 1:
        yield from map(encode_document, documents)
        return
    with Pool(workers) as pool:
        yield from pool.imap(encode_document, documents, chunksize=16)


def prepare(documents: Iterable[str], out_dir: str | Path, prefix: str = "shard",
            shard_tokens: int = SHARD_TOKENS, val_tokens: int | None = None, workers: int = 1,
            progress=None) -> list[Path]:
    """Tokenize ``documents`` and write them as shards; returns the files written."""
    return write_shards(tokenize(documents, workers), out_dir, prefix, shard_tokens, val_tokens, progress)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input)."""
    prog = prog or "python -m zth.gpt2.prepare"
    ap = ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help=f"a zth.data name ({', '.join(data.REGISTRY)}) or a text file")
    src.add_argument("--fineweb", metavar="CONFIG", help="a FineWeb-Edu config, e.g. sample-10BT")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--prefix", default=None,
                    help="shard file prefix (default: edufineweb or the text's name)")
    ap.add_argument("--docs", choices=["whole", "line", "blank"], default="whole",
                    help="how a text file splits into documents")
    ap.add_argument("--shard-tokens", type=int, default=SHARD_TOKENS)
    ap.add_argument("--val-tokens", type=int, default=None, help="size of the val shard (default: a shard)")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    args = parse(ap, sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args
    try:
        if args.fineweb:
            try:
                import datasets  # noqa: F401 - checked before any folder is made
            except ImportError:
                raise ValueError("FineWeb-Edu needs the 'datasets' package: pip install datasets") from None
            from tqdm.auto import tqdm

            docs = tqdm(fineweb_documents(args.fineweb), desc="documents", unit="doc", mininterval=2)
            prefix = args.prefix or "edufineweb"
        else:
            if args.text in data.REGISTRY:
                text, name = data.text(args.text), args.text
            else:
                p = Path(args.text)
                if not p.is_file():
                    raise ValueError(f"{args.text} is neither a zth.data name nor a file")
                text, name = p.read_text(encoding="utf-8"), p.stem
            docs, prefix = text_documents(text, args.docs), args.prefix or name
            if not docs:
                raise ValueError(f"{args.text} is empty: no document to tokenize, no shard written")
        data.fetch_tiktoken("gpt2")  # before any folder is made: the encoding is there, or one clear error
        total = [0]
        files = prepare(docs, args.out, prefix, args.shard_tokens, args.val_tokens, args.workers,
                        progress=lambda n: total.__setitem__(0, total[0] + n))
    except (ValueError, OSError, UnicodeDecodeError, data.DataError) as e:
        return fail(prog, e)
    print(f"{total[0]:,} tokens in {len(files)} shards under {args.out}")
    if not any("_train_" in f.name for f in files):
        print("warning: everything went into the val shard; lower --val-tokens", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
