"""One configuration vocabulary for every training run, and ``KEY=VALUE`` overrides.

A run is described by a :class:`RunConfig`: the model's shape (the lecture's own dataclass:
``GPTConfig``, ``GPT2Config``, ``LlamaConfig``), a :class:`TrainConfig` (how to train; the
same fields for every model) and the front-end's data options (a small dataclass of its own,
or None). Overrides name any field of the three by its bare name (``n_layer=8``, ``lr=1e-3``,
``compile=true``); a name may belong to only one of them, so this is unambiguous.

The words are build-nanogpt's: optimizer *steps* (``max_steps``, ``warmup_steps``), a peak
``lr`` decaying to ``min_lr``, micro-batches of ``batch_size`` sequences of ``seq_len`` tokens
accumulated up to ``total_batch_tokens`` per step.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["ConfigError", "RunConfig", "TrainConfig", "apply_overrides", "context_length", "parse_value",
           "resolve"]


class ConfigError(ValueError):
    """An unknown preset or field, a value that does not parse, or settings that contradict."""


@dataclass
class TrainConfig:
    """How to train: batches, optimizer, schedule, evaluation, checkpoints, hardware."""

    # batches
    batch_size: int = 64  # sequences per micro-batch and process
    seq_len: int = 0  # tokens per sequence; 0: the model's context length
    total_batch_tokens: int = 0  # tokens per optimizer step over all processes; 0: one micro-batch each
    # optimizer and learning-rate schedule
    max_steps: int = 5000
    lr: float = 3e-4  # the peak learning rate
    min_lr: float = 0.0  # where the cosine ends
    lr_schedule: str = "cosine"  # after warmup: "cosine" or "linear" down to min_lr, or "constant"
    warmup_steps: int = 0
    decay_steps: int = 0  # the cosine reaches min_lr at this step; 0: max_steps
    optimizer: str = "adamw"  # "adamw", or "muon" (Muon on hidden matrices, AdamW on the rest)
    muon_lr: float = 0.02  # Muon's peak learning rate (scaled by the same schedule)
    weight_decay: float = 0.1  # on matrices and embeddings only
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # clip the gradient norm to this; 0: no clipping
    fused_adamw: bool | None = None  # None: the fused kernel on CUDA
    # evaluation, logging, checkpoints
    eval_interval: int = 250  # evaluate every N steps (and at the start and the end)
    eval_steps: int = 20  # batches per split and evaluation
    final_eval_steps: int = 0  # batches per split for the last evaluation; 0: eval_steps
    log_interval: int = 10  # a train record every N steps
    checkpoint_interval: int = 0  # also keep ckpt_NNNNNN.pt every N steps; 0: last.pt and best.pt only
    max_seconds: float = 0.0  # stop (and evaluate) after this much training time; 0: no limit
    target_loss: float = 0.0  # stop at the first evaluation whose val loss is at most this; 0: never
    # hardware and randomness
    seed: int = 1337
    device: str = "auto"  # auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps
    dtype: str = "auto"  # autocast: auto (bf16 where supported, fp16 on older GPUs, fp32 on CPU),
    #                      float32, bfloat16, float16
    compile: bool = False  # torch.compile the model
    tf32: bool = True  # TF32 matmuls on CUDA

    def __post_init__(self) -> None:
        finite = all(math.isfinite(getattr(self, n)) for n in ("lr", "min_lr", "muon_lr", "weight_decay",
                                                               "beta1", "beta2", "grad_clip", "max_seconds",
                                                               "target_loss"))
        checks = [
            (finite, "learning rates, betas, weight_decay, grad_clip, max_seconds and target_loss "
                     "must be finite"),
            (self.batch_size >= 1 and self.max_steps >= 0, "batch_size must be >= 1 and max_steps >= 0"),
            (min(self.seq_len, self.total_batch_tokens) >= 0, "seq_len and total_batch_tokens must be >= 0"),
            (self.lr > 0 and self.muon_lr > 0, "lr and muon_lr must be positive"),
            (0 <= self.min_lr <= self.lr, f"min_lr must lie in [0, lr], got {self.min_lr}"),
            (self.lr_schedule in ("cosine", "linear", "constant"),
             "lr_schedule must be 'cosine', 'linear' or 'constant'"),
            (self.optimizer in ("adamw", "muon"), "optimizer must be 'adamw' or 'muon'"),
            (min(self.warmup_steps, self.decay_steps) >= 0, "warmup_steps and decay_steps must be >= 0"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "beta1 and beta2 must lie in [0, 1)"),
            (self.weight_decay >= 0 and self.grad_clip >= 0, "weight_decay and grad_clip must be >= 0"),
            (self.eval_interval >= 0 and self.eval_steps >= 1, "eval_interval must be >= 0, eval_steps >= 1"),
            (self.final_eval_steps >= 0 and self.log_interval >= 1, "log_interval must be >= 1"),
            (min(self.checkpoint_interval, self.max_seconds, self.target_loss) >= 0,
             "checkpoint_interval, max_seconds and target_loss must be >= 0"),
            (self.dtype in ("auto", "float32", "bfloat16", "float16"),
             "dtype must be auto, float32, bfloat16 or float16"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


@dataclass
class RunConfig:
    """Everything a run depends on: the model's shape, how to train, which data."""

    model: Any  # the lecture's model dataclass
    train: TrainConfig = field(default_factory=TrainConfig)
    data: Any = None  # the front-end's data options (a dataclass), if it has any

    def to_dict(self) -> dict:
        """Plain values (what ``run.json`` and checkpoints store)."""
        return {name: dataclasses.asdict(part) for name, part in
                (("model", self.model), ("train", self.train), ("data", self.data)) if part is not None}

    def copy(self) -> RunConfig:
        parts = (self.model, self.train, self.data)
        return RunConfig(*(replace(p) if p is not None else None for p in parts))


def _field_types(cls) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    out = {}
    for f in fields(cls):
        t = hints[f.name]
        if isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union:  # int | None
            t = next(a for a in typing.get_args(t) if a is not type(None))
        out[f.name] = t
    return out


def parse_value(text: str, typ: type, key: str) -> object:
    """``text`` as a value of ``typ`` (``true``/``false`` for booleans, ``none`` for optional fields)."""
    low = text.strip().lower()
    if typ is bool:
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key} expects true or false, got {text!r}")
    if typ in (int, float):
        try:
            value = typ(text)
        except ValueError:
            raise ConfigError(f"{key} expects {typ.__name__}, got {text!r}") from None
        if typ is float and not math.isfinite(value):
            raise ConfigError(f"{key} must be finite, got {text!r}")
        return value
    return text


def apply_overrides(cfg: RunConfig, overrides: list[str] | dict[str, object]) -> RunConfig:
    """A copy of ``cfg`` with ``key=value`` overrides applied (strings parsed by the field's type)."""
    items = overrides.items() if isinstance(overrides, dict) else [_split(o) for o in overrides]
    owners: dict[str, int] = {}
    parts = [cfg.model, cfg.train, cfg.data]
    types_ = [_field_types(type(p)) if p is not None else {} for p in parts]
    for i, t in enumerate(types_):
        for name in t:
            if name in owners:
                raise ConfigError(f"field {name!r} is in two configs; rename one")
            owners[name] = i
    changes: list[dict] = [{}, {}, {}]
    for key, value in items:
        if key not in owners:
            raise ConfigError(f"unknown config key {key!r}")
        i = owners[key]
        typ = types_[i][key]
        changes[i][key] = parse_value(value, typ, key) if isinstance(value, str) and typ is not str else value
    try:
        new = [replace(p, **c) if p is not None else None for p, c in zip(parts, changes)]
    except (TypeError, ValueError) as e:  # the dataclasses' own checks
        raise ConfigError(str(e)) from None
    return RunConfig(*new)


def _split(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not of the form key=value")
    return key.strip(), value.strip()


def context_length(model_config: Any) -> int:
    """The longest sequence a model of this shape takes (``block_size`` or ``max_seq_len``)."""
    for name in ("block_size", "max_seq_len"):
        if hasattr(model_config, name):
            return int(getattr(model_config, name))
    raise ConfigError(f"{type(model_config).__name__} has no block_size or max_seq_len")


def resolve(cfg: RunConfig) -> RunConfig:
    """``cfg`` with ``seq_len=0`` replaced by the model's context, checked against it."""
    context = context_length(cfg.model)
    seq_len = cfg.train.seq_len or context
    if seq_len > context:
        raise ConfigError(f"seq_len {seq_len} exceeds the model's context of {context} tokens")
    return RunConfig(cfg.model, replace(cfg.train, seq_len=seq_len), cfg.data)
