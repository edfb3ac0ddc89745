"""Lectures 2-6: makemore, character-level language models of names.

Shared by every makemore chapter: the vocabulary and datasets (``zth.makemore.data``), the
canonical split (``load_splits``), sampling (``zth.makemore.sampling``) and the training loop
(``zth.makemore.training``).
"""

from zth.makemore.data import BOUNDARY, Examples, Splits, Vocab, build_dataset, load_splits, split_words
from zth.makemore.sampling import sample
from zth.makemore.training import History, TrainConfig, cosine, evaluate_loss, exponential, piecewise, train

__all__ = ["BOUNDARY", "Examples", "History", "Splits", "TrainConfig", "Vocab", "build_dataset", "cosine",
           "evaluate_loss", "exponential", "load_splits", "piecewise", "sample", "split_words", "train"]
