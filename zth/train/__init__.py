"""The training stack under every language-model lecture (7, 9 and the Llama chapter).

``zth.train.config`` (one ``TrainConfig`` vocabulary, ``RunConfig``, ``--set`` overrides),
``zth.train.optim`` (AdamW or Muon, warmup + cosine), ``zth.train.data`` (batch sources:
random windows, token shards), ``zth.train.trainer`` (the loop: accumulation, autocast,
compile, DDP, evaluation, metrics, checkpoints, exact resume), ``zth.train.checkpoint``,
``zth.train.session`` (``run.json``, output folders, Ctrl-C), ``zth.train.ddp``,
``zth.train.perf`` (peak FLOP/s, MFU), ``zth.train.parallel`` (``train_many``) and
``zth.train.cli`` (the one command line of the training tools). No lecture is imported here.
"""

from zth.train.config import ConfigError, RunConfig, TrainConfig, apply_overrides, resolve
from zth.train.data import BatchSource, RandomWindows, TokenStream
from zth.train.optim import cosine_lr, lr_at
from zth.train.parallel import train_many
from zth.train.trainer import Trainer, TrainingDiverged, TrainResult, estimate_loss

__all__ = ["BatchSource", "ConfigError", "RandomWindows", "RunConfig", "TokenStream", "TrainConfig",
           "TrainResult", "Trainer", "TrainingDiverged", "apply_overrides", "cosine_lr", "estimate_loss",
           "lr_at", "resolve", "train_many"]
