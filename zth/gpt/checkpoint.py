"""A trained GPT back from its run folder: the model and its vocabulary.

Checkpoints are ``zth.train``'s (``best.pt`` for sampling, ``last.pt`` for resuming); this
module only knows how to rebuild Lecture 7's model from one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from zth.gpt.data import CharTokenizer
from zth.gpt.model import GPT, GPTConfig
from zth.storage import CheckpointError
from zth.train.checkpoint import load_checkpoint, load_state

__all__ = ["load_gpt"]


def load_gpt(path: str | Path, device: str | torch.device = "cpu") -> tuple[GPT, CharTokenizer]:
    """The model and tokenizer a checkpoint (or a run folder's ``best.pt``) holds."""
    ckpt = load_checkpoint(path)
    try:
        cfg = GPTConfig(**ckpt["config"]["model"])
        tokenizer = CharTokenizer(ckpt["meta"]["vocab"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path} is not a checkpoint of Lecture 7's GPT ({e})") from None
    if tokenizer.vocab_size != cfg.vocab_size:
        raise CheckpointError(f"{path}: its vocabulary has {tokenizer.vocab_size} symbols, "
                              f"its model {cfg.vocab_size}")
    model = GPT(cfg)
    load_state(model, ckpt["model"], str(path))
    return model.to(device).eval(), tokenizer
