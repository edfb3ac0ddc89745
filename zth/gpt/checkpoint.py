"""Checkpoints of the Lecture 7 GPT: plain tensors and values, loaded without unpickling code.

They are written and read by ``zth.storage`` (atomic writes, ``weights_only=True`` loads, a
format tag). ``best.pt`` holds the model with the lowest validation loss
seen so far (for sampling); ``last.pt`` holds everything needed to resume exactly: the model,
the optimizer, the step, and the random states of the batch sampler and of dropout.
"""

from __future__ import annotations

from pathlib import Path

import torch

from zth import storage
from zth.gpt.config import ConfigError, TrainConfig
from zth.gpt.data import CharTokenizer
from zth.gpt.model import GPT, GPTConfig
from zth.storage import CheckpointError

FORMAT = "zth.gpt/1"


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write ``payload`` (plus the format tag) to ``path`` atomically."""
    storage.save_checkpoint(path, payload, FORMAT)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint (a run folder means its ``best.pt``) safely and check its contents."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    ckpt = storage.load_checkpoint(path, FORMAT, map_location)
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


__all__ = ["load_checkpoint", "load_state", "model_from_checkpoint", "save_checkpoint",
           "train_config_from_checkpoint"]
