"""Lecture 9: reproduce GPT-2 (124M): the model, HuggingFace interop, a fast training loop, DDP."""

from zth.gpt2.model import GPT2, GPT2Config
from zth.gpt2.trainer import TrainConfig, Trainer

__all__ = ["GPT2", "GPT2Config", "TrainConfig", "Trainer"]
