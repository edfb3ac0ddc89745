"""Training checkpoints of the GPT-2 trainer: RNG states, and ``zth.storage``'s safe files.

A checkpoint is a dict of tensors and plain Python values (model and optimizer state, step,
data cursor, every rank's RNG states, configs), so it loads without arbitrary unpickling.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import torch

from zth import storage

__all__ = ["latest_checkpoint", "load_checkpoint", "rng_state", "save_checkpoint",
           "set_rng_state"]

FORMAT = "zth.checkpoint/1"


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
    """Write ``payload`` to ``path`` atomically, tagged with this module's format."""
    return storage.save_checkpoint(path, payload, FORMAT)


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint written by ``save_checkpoint`` onto the CPU, without unpickling code."""
    return storage.load_checkpoint(path, FORMAT)


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The ``ckpt_NNNNNN.pt`` with the highest step in ``out_dir`` (None if there is none)."""
    found = [(int(m.group(1)), p) for p in Path(out_dir).glob("ckpt_*.pt")
             if (m := re.fullmatch(r"ckpt_(\d+)\.pt", p.name))]
    return max(found)[1] if found else None
