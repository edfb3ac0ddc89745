"""Token shards: uint16 ``.npy`` files as build-nanogpt writes them, and their writer.

A dataset is a folder of ``{prefix}_{split}_{index:06d}.npy`` files. The writer fills shards
of ``shard_tokens`` tokens in order; the first shard (index 0) is the validation split, as in
the lecture's FineWeb-Edu preparation, and may be given a size of its own. Training reads
them with ``zth.train.data.TokenStream``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from zth.storage import atomic_path

SHARD_TOKENS = 100_000_000


def shard_name(prefix: str, split: str, index: int) -> str:
    """File name of shard ``index`` (build-nanogpt's naming)."""
    return f"{prefix}_{split}_{index:06d}.npy"


def save_tokens(path: str | Path, tokens: np.ndarray) -> Path:
    """Write ``tokens`` as a uint16 ``.npy`` file atomically (temporary file, then rename)."""
    path = Path(path)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= 2**16):
        raise ValueError("token ids must lie in [0, 65536) to be stored as uint16")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, tokens.astype(np.uint16, copy=False), allow_pickle=False)
    return path


def write_shards(token_arrays: Iterable[np.ndarray], out_dir: str | Path, prefix: str = "shard",
                 shard_tokens: int = SHARD_TOKENS, val_tokens: int | None = None,
                 progress=None) -> list[Path]:
    """Pack a stream of token arrays (documents) into shards; returns the files written.

    Shard 0 (``val``) holds the first ``val_tokens`` tokens (default ``shard_tokens``); the
    following ``train`` shards hold ``shard_tokens`` each, the last one whatever is left.
    Documents are split across shard boundaries. ``progress(n_tokens)`` is called per document.
    """
    if shard_tokens <= 0 or (val_tokens is not None and val_tokens <= 0):
        raise ValueError("shard sizes must be positive")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index, capacity = 0, val_tokens or shard_tokens
    buf = np.empty(capacity, dtype=np.uint16)
    fill = 0

    def flush() -> None:
        nonlocal index, capacity, buf, fill
        split = "val" if index == 0 else "train"
        written.append(save_tokens(out_dir / shard_name(prefix, split, index), buf[:fill]))
        index, capacity, fill = index + 1, shard_tokens, 0
        buf = np.empty(capacity, dtype=np.uint16)

    for tokens in token_arrays:
        tokens = np.asarray(tokens)
        if tokens.size and (tokens.max() >= 2**16 or tokens.min() < 0):
            raise ValueError("token ids must lie in [0, 65536) to be stored as uint16")
        if progress is not None:
            progress(len(tokens))
        while len(tokens):
            take = min(capacity - fill, len(tokens))
            buf[fill:fill + take] = tokens[:take]
            fill, tokens = fill + take, tokens[take:]
            if fill == capacity:
                flush()
    if fill:
        flush()
    return written
