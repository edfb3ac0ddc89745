"""Lecture 7: a character-level GPT on tiny Shakespeare, from the bigram model to the Transformer.

``zth.gpt.model`` holds the models, ``zth.gpt.data`` the tokenizer and batches,
``zth.gpt.config`` the presets, ``zth.gpt.trainer`` the training loop (``train``, and
``train_many`` for independent runs side by side);
``python -m zth.gpt.train`` and ``python -m zth.gpt.sample`` are the shell commands.
"""

from zth.gpt.checkpoint import load_checkpoint, model_from_checkpoint
from zth.gpt.config import PRESETS, ConfigError, TrainConfig, apply_overrides, lr_at, preset
from zth.gpt.data import CharTokenizer, estimate_loss, get_batch, train_val_split
from zth.gpt.model import (
                           GPT,
                           BigramLanguageModel,
                           Block,
                           CausalSelfAttention,
                           FeedForward,
                           GPTConfig,
                           Head,
                           MultiHeadAttention,
                           count_params,
)
from zth.gpt.trainer import TrainResult
from zth.storage import CheckpointError

__all__ = ["GPT", "PRESETS", "BigramLanguageModel", "Block", "CausalSelfAttention", "CharTokenizer",
           "CheckpointError", "ConfigError", "FeedForward", "GPTConfig", "Head", "MultiHeadAttention",
           "TrainConfig", "TrainResult", "apply_overrides", "count_params", "estimate_loss", "get_batch",
           "load_checkpoint", "lr_at", "model_from_checkpoint", "preset", "train_val_split"]
