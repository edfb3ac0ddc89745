"""The training loop of the GPT-2 reproduction, for any language model.

``Trainer`` takes any ``nn.Module`` whose ``forward(idx, targets)`` returns ``(logits, loss)``
and a data source with ``next_batch()``, ``reset()``, ``state_dict()`` and
``load_state_dict()`` (``zth.gpt2.shards.ShardLoader`` is one). It does what the lecture's
loop does: gradient accumulation up to a total batch in tokens, AdamW with decay on 2-D
parameters (fused on CUDA), warmup + cosine learning rate, gradient clipping, TF32 and bf16
autocast on CUDA, optional ``torch.compile``, DDP under ``torchrun`` with ``no_sync`` during
accumulation, periodic validation and evaluation hooks, a JSON-lines metrics log with tokens/s
and MFU, and checkpoints that resume exactly.

``read_metrics`` (from ``zth.runs``) reads the log back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from zth.gpt2.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from zth.gpt2.ddp import DistInfo, all_gather_object, all_reduce_mean
from zth.gpt2.optim import configure_adamw, cosine_lr
from zth.gpt2.perf import mfu, peak_flops
from zth.runs import MetricsLog
from zth.storage import CheckpointError
from zth.sysinfo import pick_device

__all__ = ["BatchSource", "TrainConfig", "Trainer", "format_record"]


class BatchSource(Protocol):
    """What the trainer needs from a data loader (each rank holds its own)."""

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...
    def reset(self) -> None: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class TrainConfig:
    """Optimization and bookkeeping settings. Defaults: the lecture's GPT-2 (124M) run."""

    total_batch_tokens: int = 524_288  # tokens per optimizer step, over all ranks (2**19)
    micro_batch: int = 64
    seq_len: int = 1024
    max_steps: int = 19_073
    max_lr: float = 6e-4
    min_lr: float = 6e-5
    warmup_steps: int = 715
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 disables clipping (the norm is still logged)
    eval_interval: int = 250  # validation and eval hooks every N steps (0: only at start and end)
    eval_steps: int = 20  # validation micro-batches per evaluation and rank
    checkpoint_interval: int = 5000  # 0: only at the end, -1: never (checkpoints need out_dir)
    print_interval: int = 1  # console line every N steps on rank 0 (0: quiet)
    seed: int = 1337
    compile: bool = False
    amp: str = "auto"  # "auto": bf16 autocast on CUDA, none elsewhere; "bf16"; "off"
    tf32: bool = True  # TF32 matmuls on CUDA
    fused_adamw: bool | None = None  # None: the fused AdamW kernel on CUDA, the loop version elsewhere
    device: str = "auto"
    out_dir: str | None = None  # metrics.jsonl and checkpoints go here (rank 0)

    def __post_init__(self) -> None:
        for name in ("total_batch_tokens", "micro_batch", "seq_len", "max_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.amp not in ("auto", "bf16", "off"):
            raise ValueError(f"amp must be 'auto', 'bf16' or 'off', got {self.amp!r}")
        if self.min_lr > self.max_lr:
            raise ValueError(f"min_lr ({self.min_lr}) exceeds max_lr ({self.max_lr})")


def _plain(x):
    return asdict(x) if is_dataclass(x) else x


class Trainer:
    """Train ``model`` on ``train_data``; see the module docstring.

    ``evals`` are callables ``fn(trainer) -> dict`` run on every rank at each evaluation
    (e.g. HellaSwag, samples); their results join the evaluation's metrics record.
    ``flops_per_token`` defaults to ``model.flops_per_token(seq_len)`` when the model has it;
    ``peak`` (FLOP/s per device) to the datasheet value of a known GPU. Under ``torchrun``
    pass ``dist=zth.gpt2.ddp.init_distributed()`` (and loaders built for that rank); without
    it the trainer runs as one process on ``config.device``.
    """

    def __init__(self, model: nn.Module, train_data: BatchSource, config: TrainConfig,
                 val_data: BatchSource | None = None, evals: Sequence[Callable[[Trainer], dict]] = (),
                 dist: DistInfo | None = None, flops_per_token: float | None = None,
                 peak: float | None = None, log: Callable[[str], None] = print):
        self.config = cfg = config
        self.dist = dist or DistInfo(device=str(pick_device(cfg.device)))
        self.train_data, self.val_data, self.evals, self._print = train_data, val_data, list(evals), log
        per_step = cfg.micro_batch * cfg.seq_len * self.dist.world_size
        if cfg.total_batch_tokens % per_step:
            raise ValueError(f"total_batch_tokens {cfg.total_batch_tokens} is not a multiple of "
                             f"micro_batch x seq_len x ranks = {per_step}")
        self.grad_accum_steps = cfg.total_batch_tokens // per_step
        torch.manual_seed(cfg.seed + self.dist.rank)
        device, cuda = self.dist.device, self.dist.device_type == "cuda"
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = cfg.tf32
            torch.set_float32_matmul_precision("high" if cfg.tf32 else "highest")
        self.amp_dtype = torch.bfloat16 if cfg.amp == "bf16" or (cfg.amp == "auto" and cuda) else None
        self.raw_model = model.to(device)
        self.optimizer = configure_adamw(self.raw_model, lr=cfg.max_lr, weight_decay=cfg.weight_decay,
                                         betas=(cfg.beta1, cfg.beta2),
                                         fused=cuda if cfg.fused_adamw is None else cfg.fused_adamw)
        self.model = torch.compile(self.raw_model) if cfg.compile else self.raw_model
        if self.dist.ddp:
            self.model = DDP(self.model, device_ids=[self.dist.local_rank] if cuda else None)
        if flops_per_token is None and hasattr(self.raw_model, "flops_per_token"):
            flops_per_token = self.raw_model.flops_per_token(cfg.seq_len)
        self.flops_per_token = flops_per_token
        precision = "bf16" if self.amp_dtype else ("tf32" if cfg.tf32 else "fp32")
        self.peak = peak if peak is not None else peak_flops(device, precision)
        self.step, self.tokens_seen, self.elapsed = 0, 0, 0.0
        self.history: list[dict] = []
        self.out_dir = Path(cfg.out_dir) if cfg.out_dir else None
        self.metrics_log: MetricsLog | None = None  # opened by train() (rank 0, with out_dir)

    # -- pieces --------------------------------------------------------------------------
    def autocast(self):
        """bf16 autocast on the trainer's device when enabled, else a no-op context."""
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.dist.device_type, dtype=self.amp_dtype)

    def lr_at(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based)."""
        c = self.config
        return cosine_lr(step, c.max_lr, c.min_lr, c.warmup_steps, c.max_steps)

    def train_step(self) -> dict:
        """One optimizer step over ``grad_accum_steps`` micro-batches; returns its metrics."""
        cfg, device = self.config, self.dist.device
        t0 = time.perf_counter()
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=device)
        for micro in range(self.grad_accum_steps):
            x, y = self.train_data.next_batch()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            last = micro == self.grad_accum_steps - 1
            # all-reduce the gradients only on the last micro-batch
            sync = self.model.no_sync() if self.dist.ddp and not last else nullcontext()
            with sync:
                with self.autocast():
                    _, loss = self.model(x, y)
                loss = loss / self.grad_accum_steps
                loss_sum += loss.detach()
                loss.backward()
        all_reduce_mean(loss_sum)
        norm = nn.utils.clip_grad_norm_(self.raw_model.parameters(),
                                        cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        if self.dist.device_type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        self.step += 1
        self.tokens_seen += cfg.total_batch_tokens
        self.elapsed += dt
        tps = cfg.total_batch_tokens / dt
        util = None
        if self.flops_per_token:
            util = mfu(self.flops_per_token, tps / self.dist.world_size, self.peak)
        return {"step": self.step, "loss": loss_sum.item(), "lr": lr, "grad_norm": norm.item(),
                "dt_ms": dt * 1000, "tokens_per_s": tps, "mfu": util, "tokens": self.tokens_seen,
                "elapsed": self.elapsed}

    @torch.no_grad()
    def val_loss(self) -> float:
        """Mean loss over ``eval_steps`` validation micro-batches per rank, averaged over ranks."""
        self.model.eval()
        self.val_data.reset()
        total = torch.zeros((), device=self.dist.device)
        for _ in range(self.config.eval_steps):
            x, y = self.val_data.next_batch()
            with self.autocast():
                _, loss = self.model(x.to(self.dist.device), y.to(self.dist.device))
            total += loss.detach().float()
        return all_reduce_mean(total / self.config.eval_steps).item()

    def evaluate(self) -> dict:
        """Validation loss and every eval hook at the current step; logged and returned."""
        record = {"step": self.step, "tokens": self.tokens_seen, "elapsed": self.elapsed}
        if self.val_data is not None:
            record["val_loss"] = self.val_loss()
        for fn in self.evals:
            record.update(fn(self) or {})
        self._log(record)
        return record

    # -- the loop ------------------------------------------------------------------------
    def train(self, resume: bool | str | Path = False) -> list[dict]:
        """Run until ``max_steps``; ``resume=True`` continues from the latest checkpoint in
        ``out_dir`` (if any), a path from that checkpoint. Returns rank 0's metrics records."""
        cfg = self.config
        if resume:
            path = resume if isinstance(resume, (str, Path)) else (
                latest_checkpoint(self.out_dir) if self.out_dir else None)
            if path is not None:
                self.load_checkpoint(path)
        if self.out_dir and self.dist.master:  # resuming keeps only the records up to its step
            self.metrics_log = MetricsLog(self.out_dir / "metrics.jsonl", self.step or None)
        if self.step == 0:
            self.evaluate()
        while self.step < cfg.max_steps:
            record = self.train_step()
            self._log(record)
            last = self.step == cfg.max_steps
            if last or (cfg.eval_interval and self.step % cfg.eval_interval == 0):
                self.evaluate()
            every = cfg.checkpoint_interval
            if self.out_dir and every >= 0 and (last or (every and self.step % every == 0)):
                self.save_checkpoint()
        return self.history

    def _log(self, record: dict) -> None:
        if not self.dist.master:
            return
        self.history.append(record)
        if self.metrics_log is not None:
            self.metrics_log.write(record)
        every = self.config.print_interval
        if every and ("loss" not in record or record["step"] % every == 0):
            self._print(format_record(record))

    # -- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path | None = None) -> Path | None:
        """Write model, optimizer, step, data cursor and every rank's RNG state (collective).

        Returns the path on rank 0 (``out_dir/ckpt_NNNNNN.pt`` by default), None elsewhere.
        """
        rngs = all_gather_object(rng_state())
        if not self.dist.master:
            return None
        if path is None:
            if self.out_dir is None:
                raise ValueError("no checkpoint path and no out_dir")
            path = self.out_dir / f"ckpt_{self.step:06d}.pt"
        model_config = getattr(self.raw_model, "config", None)
        return save_checkpoint(path, {
            "model": self.raw_model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "step": self.step, "tokens": self.tokens_seen, "elapsed": self.elapsed,
            "train_data": self.train_data.state_dict(), "rng": rngs,
            "train_config": _plain(self.config), "model_config": _plain(model_config),
            "world_size": self.dist.world_size})

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore everything ``save_checkpoint`` wrote; a mismatched model raises CheckpointError."""
        ckpt = load_checkpoint(path)
        try:
            self.raw_model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path} does not match this model: {str(e).splitlines()[0]}") from None
        self.step, self.tokens_seen, self.elapsed = ckpt["step"], ckpt["tokens"], ckpt["elapsed"]
        self.train_data.load_state_dict(ckpt["train_data"])
        rngs = ckpt["rng"]
        set_rng_state(rngs[self.dist.rank % len(rngs)])


def format_record(r: dict) -> str:
    """One console line for a metrics record."""
    if "loss" in r:
        line = (f"step {r['step']:5d} | loss {r['loss']:.4f} | lr {r['lr']:.2e} | norm {r['grad_norm']:.3f}"
                f" | {r['dt_ms']:.0f} ms | {r['tokens_per_s']:,.0f} tok/s")
        return line + (f" | mfu {100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "")
    parts = [f"step {r['step']:5d} | eval"]
    parts += [f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()
              if k not in ("step", "tokens", "elapsed") and not isinstance(v, (list, dict))]
    texts = [f"\n    {k}: {t!r}" for k, v in r.items() if isinstance(v, list)
             for t in v if isinstance(t, str)]
    return " | ".join(parts) + "".join(texts)
