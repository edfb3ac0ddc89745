"""Training checkpoints: atomic writes, safe loads (``weights_only=True``), RNG states.

A checkpoint is a dict of tensors and plain Python values (model and optimizer state, step,
data cursor, every rank's RNG states, configs), so it loads without arbitrary unpickling.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

FORMAT = "zth.checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not match the model being trained."""


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
    """``torch.save`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        torch.save({"format": FORMAT, **payload}, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint written by ``save_checkpoint`` onto the CPU, without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    return ckpt


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The ``ckpt_NNNNNN.pt`` with the highest step in ``out_dir`` (None if there is none)."""
    found = [(int(m.group(1)), p) for p in Path(out_dir).glob("ckpt_*.pt")
             if (m := re.fullmatch(r"ckpt_(\d+)\.pt", p.name))]
    return max(found)[1] if found else None
