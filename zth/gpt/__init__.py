"""Lecture 7: a character-level GPT on tiny Shakespeare, from the bigram model to the Transformer.

``zth.gpt.model`` holds the models, ``zth.gpt.data`` the characters, ``zth.gpt.config`` the
presets, ``zth.gpt.train`` the training (``train``, on the shared ``zth.train.Trainer``) and
``zth.gpt.checkpoint`` loads a trained model back; ``python -m zth.gpt.train`` and
``python -m zth.gpt.sample`` are the shell commands.
"""

from zth.gpt.checkpoint import load_gpt
from zth.gpt.config import PRESETS, CharData, preset
from zth.gpt.data import CharTokenizer, train_val_split
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

__all__ = ["GPT", "PRESETS", "BigramLanguageModel", "Block", "CausalSelfAttention", "CharData",
           "CharTokenizer", "FeedForward", "GPTConfig", "Head", "MultiHeadAttention", "count_params",
           "load_gpt", "preset", "train_val_split"]
