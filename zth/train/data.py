"""Where batches come from: any object with ``next_batch``, ``reset``, ``state_dict`` and
``load_state_dict`` (:class:`BatchSource`). Two kinds serve every lecture:

* :class:`RandomWindows`: windows of a token tensor at random positions (Lecture 7's
  ``get_batch``), drawn from a generator of their own, so a run's batches depend only on its
  seed and resume exactly;
* :class:`TokenStream`: consecutive windows of token shards (uint16 ``.npy`` files as
  build-nanogpt writes them, or arrays in memory), walked in order (Lecture 9, the Llama).

Under DDP each process (rank ``r`` of ``W``) reads the ``r``-th of every ``W`` micro-batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

__all__ = ["BatchSource", "RandomWindows", "TokenStream", "find_shards", "get_batch", "load_tokens"]


class BatchSource(Protocol):
    """What the trainer needs from a data loader (each rank holds its own)."""

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...
    def reset(self) -> None: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


def get_batch(data: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator | None = None,
              align: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows ``x`` (B, T) of ``data`` and their targets ``y``, shifted by one.

    Windows start anywhere (``align=1``), or only at multiples of ``align``: for data made of
    records of ``align`` tokens, each window then starts at the beginning of a record.
    """
    if len(data) <= block_size:
        raise ValueError(f"data of length {len(data)} is too short for block_size {block_size}")
    ix = torch.randint((len(data) - block_size - 1) // align + 1, (batch_size,), generator=generator) * align
    x = torch.stack([data[i:i + block_size] for i in ix])
    y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])
    return x, y


class RandomWindows:
    """Batches of random windows of ``data`` (a 1-D tensor of token ids), seeded.

    ``reset()`` restarts the generator, so an evaluation source gives the same batches at
    every evaluation; the generator's state is the source's whole state.
    """

    def __init__(self, data: torch.Tensor, batch_size: int, seq_len: int, seed: int = 0, align: int = 1,
                 rank: int = 0, world_size: int = 1):
        if len(data) <= seq_len:
            raise ValueError(f"data of length {len(data)} is too short for windows of {seq_len} tokens")
        self.data, self.B, self.T, self.seed, self.align = data, batch_size, seq_len, seed, align
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator()
        self.reset()

    def reset(self) -> None:
        self.generator.manual_seed(self.seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = get_batch(self.data, self.B * self.world_size, self.T, self.generator, self.align)
        rows = slice(self.rank * self.B, (self.rank + 1) * self.B)
        return x[rows], y[rows]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def load_tokens(path: str | Path) -> np.ndarray:
    """A shard as a read-only memory map of uint16 (never unpickles)."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path} is not a readable token shard ({e})") from None
    if arr.dtype != np.uint16 or arr.ndim != 1:
        raise ValueError(f"{path}: expected a 1-D uint16 array, found {arr.ndim}-D {arr.dtype}")
    return arr


def find_shards(data_dir: str | Path, split: str) -> list[Path]:
    """The sorted shard files of ``split`` in ``data_dir``."""
    return sorted(Path(data_dir).glob(f"*_{split}_*.npy"))


class TokenStream:
    """Micro-batches ``(x, y)`` of shape ``(B, T)`` read in order from token shards.

    ``shards`` are file paths or in-memory token arrays; ``y`` is ``x`` shifted by one token.
    All ranks keep the same cursor; at each call rank ``r`` of ``W`` reads the ``r``-th of the
    next ``W`` micro-batches, so one process with ``k·W`` accumulation steps sees exactly the
    tokens that ``W`` processes with ``k`` steps see together. The cursor (shard, position) is
    the whole state.
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
                 rank: int = 0, world_size: int = 1) -> TokenStream:
        """A stream over the ``split`` shards (``"train"`` or ``"val"``) found in ``data_dir``."""
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
