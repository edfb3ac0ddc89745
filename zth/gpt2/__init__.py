"""Lecture 9: reproduce GPT-2 (124M): the model, HuggingFace interop, data preparation, HellaSwag.

Training goes through the shared ``zth.train.Trainer`` (``python -m zth.gpt2.train``).
"""

from zth.gpt2.model import GPT2, GPT2Config

__all__ = ["GPT2", "GPT2Config"]
