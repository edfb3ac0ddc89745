"""Token shards: uint16 ``.npy`` files as build-nanogpt writes them, a writer and a per-rank loader.

A dataset is a folder of ``{prefix}_{split}_{index:06d}.npy`` files. The writer fills shards
of ``shard_tokens`` tokens in order; the first shard (index 0) is the validation split, as in
the lecture's FineWeb-Edu preparation, and may be given a size of its own.

The loader walks the shards of one split in order. All ranks keep the same cursor; at each
call rank ``r`` of ``W`` reads the ``r``-th of the next ``W`` micro-batches, so one process
with ``k·W`` accumulation steps sees exactly the tokens that ``W`` processes with ``k`` steps
see together. The cursor (shard, position) is the loader's whole state, saved in checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

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


def load_tokens(path: str | Path) -> np.ndarray:
    """A shard as a read-only memory map of uint16 (never unpickles)."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path} is not a readable token shard ({e})") from None
    if arr.dtype != np.uint16 or arr.ndim != 1:
        raise ValueError(f"{path}: expected a 1-D uint16 array, found {arr.ndim}-D {arr.dtype}")
    return arr


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


def find_shards(data_dir: str | Path, split: str) -> list[Path]:
    """The sorted shard files of ``split`` in ``data_dir``."""
    return sorted(Path(data_dir).glob(f"*_{split}_*.npy"))


class ShardLoader:
    """Micro-batches ``(x, y)`` of shape ``(B, T)`` from token shards, split across ranks.

    ``shards`` are file paths or in-memory token arrays. ``y`` is ``x`` shifted by one token.
    """

    def __init__(self, shards: Sequence[str | Path | np.ndarray], batch_size: int, seq_len: int,
                 rank: int = 0, world_size: int = 1):
        if not shards:
            raise ValueError("no token shards given")
        if batch_size <= 0 or seq_len <= 0 or not 0 <= rank < world_size:
            raise ValueError(f"bad loader shape B={batch_size} T={seq_len} rank={rank}/{world_size}")
        self.shards, self.B, self.T = list(shards), batch_size, seq_len
        self.rank, self.world_size = rank, world_size
        self.step_tokens = batch_size * seq_len * world_size  # tokens all ranks consume per call
        self.reset()

    @classmethod
    def from_dir(cls, data_dir: str | Path, split: str, batch_size: int, seq_len: int,
                 rank: int = 0, world_size: int = 1) -> ShardLoader:
        """A loader over the ``split`` shards (``"train"`` or ``"val"``) found in ``data_dir``."""
        files = find_shards(data_dir, split)
        if not files:
            raise ValueError(f"no '{split}' shards (*_{split}_*.npy) in {data_dir}")
        return cls(files, batch_size, seq_len, rank, world_size)

    def _open(self, i: int) -> None:
        src = self.shards[i]
        self.tokens = src if isinstance(src, np.ndarray) else load_tokens(src)
        if len(self.tokens) < self.step_tokens + 1:
            raise ValueError(f"shard {i} holds {len(self.tokens)} tokens, fewer than one step of "
                             f"{self.step_tokens} + 1 (B={self.B}, T={self.T}, ranks={self.world_size})")
        self.shard = i

    def reset(self) -> None:
        """Back to the first token of the first shard."""
        self._open(0)
        self.pos = 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's next micro-batch (int64 tensors on the CPU)."""
        start = self.pos + self.rank * self.B * self.T
        buf = torch.from_numpy(self.tokens[start:start + self.B * self.T + 1].astype(np.int64))
        self.pos += self.step_tokens
        if self.pos + self.step_tokens + 1 > len(self.tokens):
            self._open((self.shard + 1) % len(self.shards))
            self.pos = 0
        return buf[:-1].view(self.B, self.T), buf[1:].view(self.B, self.T)

    def state_dict(self) -> dict:
        """The cursor: which shard and where in it (the same on every rank)."""
        return {"shard": self.shard, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved cursor."""
        shard, pos = int(state["shard"]), int(state["pos"])
        if not 0 <= shard < len(self.shards):
            raise ValueError(f"saved shard index {shard} but the loader has {len(self.shards)} shards")
        self._open(shard)
        if not 0 <= pos <= len(self.tokens) - self.step_tokens - 1:
            raise ValueError(f"saved position {pos} does not fit shard {shard} for this batch shape")
        self.pos = pos
