"""Checkpoints: plain tensors and plain values, written atomically, loaded without unpickling code.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts saved with ``torch.save``
and read back with ``torch.load(..., weights_only=True)``, which refuses anything else: a file
cannot run code when it is loaded. ``best.pt`` holds the model with the lowest validation loss
seen so far (for sampling); ``last.pt`` holds everything needed to resume exactly: the model,
the optimizer, the step, and the random states of the batch sampler and of dropout.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from zth.gpt.config import ConfigError, TrainConfig
from zth.gpt.data import CharTokenizer
from zth.gpt.model import GPT, GPTConfig

FORMAT = "zth.gpt/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not match the model it is loaded into."""


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write ``payload`` (plus the format tag) to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"format": FORMAT, **payload}, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint safely (``weights_only=True``) and check that it is a zth.gpt checkpoint."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt zip, truncated file, or a pickle that is not plain data
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint ({reason[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    for key in ("model", "model_config", "vocab"):
        if key not in ckpt:
            raise CheckpointError(f"{path} lacks {key!r}")
    return ckpt


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu") -> tuple[GPT, CharTokenizer]:
    """The model and tokenizer a checkpoint holds; a mismatch gives ``CheckpointError``."""
    try:
        cfg = GPTConfig(**ckpt["model_config"])
        tokenizer = CharTokenizer(ckpt["vocab"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint has an invalid model configuration ({e})") from None
    if tokenizer.vocab_size != cfg.vocab_size:
        raise CheckpointError(f"checkpoint vocabulary has {tokenizer.vocab_size} symbols, "
                              f"its model {cfg.vocab_size}")
    model = GPT(cfg)
    load_state(model, ckpt["model"])
    return model.to(device), tokenizer


def load_state(model: torch.nn.Module, state: dict) -> None:
    """``model.load_state_dict(state)``, strict, with a one-line error on a mismatch."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])[:300]
        raise CheckpointError(f"checkpoint does not match the model: {detail}") from None


def train_config_from_checkpoint(ckpt: dict) -> TrainConfig:
    """The ``TrainConfig`` a resumable checkpoint was written with."""
    if "train_config" not in ckpt or "optimizer" not in ckpt:
        raise CheckpointError("checkpoint holds a model only (best.pt); resume from last.pt")
    try:
        return TrainConfig.from_dict(ckpt["train_config"])
    except (ConfigError, ValueError) as e:
        raise CheckpointError(f"checkpoint has an invalid training configuration ({e})") from None


__all__ = ["CheckpointError", "load_checkpoint", "load_state", "model_from_checkpoint", "save_checkpoint",
           "train_config_from_checkpoint"]
