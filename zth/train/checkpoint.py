"""Checkpoints of every training run: one format, one naming, safe to load.

A run folder holds ``last.pt`` (everything needed to resume exactly: model, optimizers, step,
the data sources' positions and every random generator's state), ``best.pt`` (the model
with the lowest validation loss so far, for sampling and export) and, if asked, numbered
snapshots ``ckpt_NNNNNN.pt``. A checkpoint is a dict of tensors and plain values under the
format tag ``FORMAT`` (``zth.train/1``), written atomically and read back with ``weights_only=True``
(``zth.storage``): loading a file cannot run code. Files of zth's earlier formats are refused
with a message that says so, never half-read.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from zth import storage
from zth.storage import CheckpointError

__all__ = ["FORMAT", "load_checkpoint", "load_state", "rng_state", "save_checkpoint", "set_rng_state"]

FORMAT = "zth.train/1"
_OLD_FORMATS = ("zth.gpt/1", "zth.checkpoint/1")


def rng_state() -> dict:
    """This process's Python, NumPy, torch CPU and CUDA generator states (plain values)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(), "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` to ``path`` atomically under this module's format tag."""
    return storage.save_checkpoint(path, payload, FORMAT)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint (a run folder means its ``best.pt``), safely; ``CheckpointError`` otherwise."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    try:
        ckpt = storage.load_checkpoint(path, FORMAT, map_location)
    except CheckpointError:
        old = _old_format(path)
        if old:
            raise CheckpointError(f"{path} is a checkpoint of zth's earlier format {old!r}; the "
                                  f"format is now {FORMAT!r} (one trainer for every model): train it "
                                  "again") from None
        raise
    for key in ("model", "config", "step"):
        if key not in ckpt:
            raise CheckpointError(f"{path} lacks {key!r}")
    return ckpt


def _old_format(path: Path) -> str | None:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - unreadable: not an old checkpoint either
        return None
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    return fmt if fmt in _OLD_FORMATS else None


def load_state(model: nn.Module, state: dict, what: str = "checkpoint") -> None:
    """``model.load_state_dict(state)``, strict, with a one-line ``CheckpointError`` on a mismatch."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, KeyError) as e:
        lines = str(e).strip().splitlines()
        detail = " ".join(line.strip() for line in lines[:3])[:300]
        raise CheckpointError(f"{what} does not match the model: {detail}") from None
