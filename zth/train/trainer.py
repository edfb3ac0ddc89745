"""The training loop of every language model in zth: Lecture 7's GPT, GPT-2, the Llama.

``Trainer`` trains any ``nn.Module`` whose ``forward(idx, targets)`` returns ``(logits, loss)``
on any :class:`~zth.train.data.BatchSource`. Each optimizer step accumulates gradients over
micro-batches up to ``total_batch_tokens`` (under DDP, ``no_sync`` skips the all-reduce on all
but the last), clips the gradient norm, sets the scheduled learning rate and steps AdamW (or
Muon). Autocast follows the device: bf16 where supported, fp16 with a gradient scaler on CUDA
GPUs without bf16, fp32 on the CPU unless asked. Every ``eval_interval`` steps it measures the
loss on each evaluation source and runs the evaluation hooks.

Given an output folder, a run writes ``metrics.jsonl`` (one record per log step and per
evaluation, the same keys for every model; ``elapsed_s`` is wall time, ``train_s`` the optimizer
steps' own time, evaluations left out), ``run.json`` (command, device, git revision,
times, the resolved configuration, the results), ``best.pt`` and ``last.pt``
(``zth.train.checkpoint``). Ctrl-C stops after the current step and saves ``last.pt``;
``resume=True`` continues from it exactly. A loss that stops being finite ends the run with
:class:`TrainingDiverged`, leaving the last good ``last.pt``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from zth.runs import MetricsLog, read_metrics
from zth.storage import CheckpointError
from zth.sysinfo import pick_device
from zth.train.checkpoint import load_checkpoint, load_state, rng_state, save_checkpoint, set_rng_state
from zth.train.config import ConfigError, RunConfig, resolve
from zth.train.data import BatchSource
from zth.train.ddp import DistInfo, all_gather_object, all_reduce_mean, any_rank
from zth.train.optim import configure_optimizers, lr_at
from zth.train.perf import mfu, peak_flops
from zth.train.session import RunRecord, check_out_dir, stop_on_sigint

__all__ = ["TrainResult", "Trainer", "TrainingDiverged", "estimate_loss", "format_record"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; ``last.pt`` holds the last good state."""


@dataclass
class TrainResult:
    """What ``Trainer.train`` returns (rank 0's view)."""

    model: nn.Module
    config: RunConfig
    best_val_loss: float
    best_step: int
    final: dict[str, float]  # the last evaluation's losses, by source: {"train": ..., "val": ...}
    step: int
    tokens_per_s: float  # training tokens per second of training time, this session
    elapsed_s: float  # wall time of all sessions, evaluations included
    train_s: float  # training time of all sessions: the optimizer steps' own durations, evaluations left out
    interrupted: bool
    metrics: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # what the checkpoints store beside the model (a vocabulary)


@torch.no_grad()
def estimate_loss(model: nn.Module, sources: Mapping[str, BatchSource], steps: int,
                  device: str | torch.device = "cpu", autocast=nullcontext) -> dict[str, float]:
    """Mean loss over ``steps`` batches of each source, in eval mode.

    Each source is reset first, so every evaluation sees the same batches (comparable from
    one evaluation to the next) and training's random state is untouched.
    """
    was_training = model.training
    model.eval()
    out = {}
    for name, source in sources.items():
        source.reset()
        total = torch.zeros((), device=device)
        for _ in range(steps):
            x, y = source.next_batch()
            with autocast():
                _, loss = model(x.to(device), y.to(device))
            total += loss.float()
        out[name] = all_reduce_mean(total / steps).item()
    model.train(was_training)
    return out


class Trainer:
    """Train ``model`` as ``config.train`` says; see the module docstring.

    ``eval_data`` maps a name (``"val"``, ``"train"``) to a source whose loss every evaluation
    reports as ``<name>_loss``; ``"val"`` decides ``best.pt``. ``evals`` are callables
    ``fn(trainer) -> dict`` run on every rank at each evaluation (HellaSwag, samples); their
    results join the evaluation's record. ``meta`` (plain values, e.g. a vocabulary) is stored
    in every checkpoint. Under ``torchrun`` pass ``dist=zth.train.ddp.init_distributed()``.
    """

    def __init__(self, model: nn.Module, config: RunConfig, train_data: BatchSource,
                 eval_data: Mapping[str, BatchSource] | None = None,
                 evals: Sequence[Callable[[Trainer], dict]] = (), dist: DistInfo | None = None,
                 out: str | Path | None = None, meta: dict | None = None, peak: float | None = None,
                 log: Callable[[str], None] | None = print, command: str | None = None,
                 preset: str | None = None):
        self.config = config = resolve(config)  # seq_len 0: the model's context
        tc = config.train
        self.dist = dist or DistInfo(device=str(pick_device(tc.device)))
        self.train_data, self.eval_data, self.evals = train_data, dict(eval_data or {}), list(evals)
        self.out, self.meta, self._print = (Path(out) if out else None), dict(meta or {}), log
        per_step = tc.batch_size * tc.seq_len * self.dist.world_size
        total = tc.total_batch_tokens or per_step
        if total % per_step:
            raise ValueError(f"total_batch_tokens {total} is not a multiple of batch_size x seq_len x "
                             f"processes = {per_step}")
        self.grad_accum_steps, self.step_tokens = total // per_step, total
        device, cuda = self.dist.device, self.dist.device_type == "cuda"
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tc.tf32
            torch.set_float32_matmul_precision("high" if tc.tf32 else "highest")
        torch.manual_seed(tc.seed + self.dist.rank)  # dropout differs between ranks, repeats between runs
        self.amp_dtype = _amp_dtype(tc.dtype, self.dist.device_type)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 and cuda else None
        self.raw_model = model.to(device)
        self.optimizers = configure_optimizers(self.raw_model, tc)
        self.model = torch.compile(self.raw_model) if tc.compile else self.raw_model
        if self.dist.ddp:
            self.model = DDP(self.model, device_ids=[self.dist.local_rank] if cuda else None)
        fpt = getattr(self.raw_model, "flops_per_token", None)
        self.flops_per_token = fpt(tc.seq_len) if callable(fpt) else None
        precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp_dtype,
                                                                         "tf32" if tc.tf32 else "fp32")
        self.peak = peak if peak is not None else peak_flops(device, precision)
        self.step, self.tokens_seen, self.best_val, self.best_step = 0, 0, math.inf, -1
        self.history: list[dict] = []
        self.prior_elapsed, self.t0 = 0.0, time.perf_counter()
        self.train_seconds = 0.0  # the optimizer steps' own durations, all sessions
        self.record = RunRecord(self.out, config, command, preset, self.dist) if self.dist.master else None
        self.metrics_log: MetricsLog | None = None

    # -- one step ---------------------------------------------------------------------------
    def autocast(self):
        """Autocast to the run's reduced precision on its device, or a no-op context."""
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.dist.device_type, dtype=self.amp_dtype)

    def train_step(self) -> dict:
        """One optimizer step over ``grad_accum_steps`` micro-batches; returns its metrics."""
        tc, device = self.config.train, self.dist.device
        t0 = time.perf_counter()
        self.model.train()
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=device)
        for micro in range(self.grad_accum_steps):
            x, y = self.train_data.next_batch()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            last = micro == self.grad_accum_steps - 1
            # all-reduce the gradients only on the last micro-batch
            with self.model.no_sync() if self.dist.ddp and not last else nullcontext():
                with self.autocast():
                    _, loss = self.model(x, y)
                loss = loss / self.grad_accum_steps  # the sum of the micro-batches' losses is their mean
                loss_sum += loss.detach()
                (self.scaler.scale(loss) if self.scaler else loss).backward()
        loss_value = all_reduce_mean(loss_sum).item()
        if not math.isfinite(loss_value):
            raise TrainingDiverged(f"the loss became {loss_value} at step {self.step + 1}; "
                                   "lower the learning rate (last.pt holds the last good state)")
        if self.scaler:
            for opt in self.optimizers:
                self.scaler.unscale_(opt)
        norm = nn.utils.clip_grad_norm_(self.raw_model.parameters(), tc.grad_clip or math.inf)
        lr = lr_at(self.step, tc)
        for opt in self.optimizers:
            for group in opt.param_groups:  # every group follows the schedule relative to its peak
                group["lr"] = lr if group["peak_lr"] == tc.lr else group["peak_lr"] * lr / tc.lr
            self.scaler.step(opt) if self.scaler else opt.step()
        if self.scaler:
            self.scaler.update()
        if self.dist.device_type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        self.train_seconds += dt
        self.step += 1
        self.tokens_seen += self.step_tokens
        tps = self.step_tokens / dt
        record = {"kind": "train", "step": self.step, "loss": loss_value, "lr": lr, "grad_norm": norm.item(),
                  "tokens_per_s": tps, "tokens": self.tokens_seen}
        self._add_mfu(record)
        return record

    def _add_mfu(self, record: dict) -> None:
        """``record["mfu"]`` from its tokens/s, where the device's peak is known (never a guess)."""
        util = mfu(self.flops_per_token, record["tokens_per_s"] / self.dist.world_size, self.peak) \
            if self.flops_per_token else None
        if util is not None:
            record["mfu"] = util

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, steps: int | None = None) -> dict:
        """The loss on every evaluation source and every hook's results, at the current step."""
        losses = estimate_loss(self.model, self.eval_data, steps or self.config.train.eval_steps,
                               self.dist.device, self.autocast)
        record = {"kind": "eval", "step": self.step, **{f"{k}_loss": v for k, v in losses.items()}}
        for fn in self.evals:
            record.update(fn(self) or {})
        record["tokens"] = self.tokens_seen
        return record

    def improved(self, val_loss: float | None) -> bool:
        """Whether ``val_loss`` is the lowest seen so far (and remember it if so)."""
        if val_loss is None or not val_loss < self.best_val:
            return False
        self.best_val, self.best_step = val_loss, self.step
        return True

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, name: str) -> Path | None:
        """Write ``out/<name>.pt`` (collective: every rank's RNG state goes in); rank 0 returns it.

        ``best`` holds the model only; any other name everything needed to resume.
        """
        rngs = all_gather_object(rng_state()) if name != "best" else None
        if not self.dist.master or self.out is None:
            return None
        payload = {"model": self.raw_model.state_dict(), "config": self.config.to_dict(), "step": self.step,
                   "best_val_loss": self.best_val, "best_step": self.best_step, "meta": self.meta}
        if name != "best":
            payload.update(optimizers=[opt.state_dict() for opt in self.optimizers], rng=rngs,
                           tokens=self.tokens_seen, elapsed_s=self.elapsed(), train_s=self.train_seconds,
                           train_data=self.train_data.state_dict(), world_size=self.dist.world_size,
                           scaler=self.scaler.state_dict() if self.scaler else None)
        return save_checkpoint(self.out / f"{name}.pt", payload)

    def load(self, path: str | Path) -> dict:
        """Restore what ``save`` wrote (the model configuration must match); returns the checkpoint."""
        ckpt = load_checkpoint(path)
        if "optimizers" not in ckpt:
            raise CheckpointError(f"{path} holds a model only (best.pt); resume from last.pt")
        saved, asked = ckpt["config"].get("model"), self.config.to_dict()["model"]
        if saved != asked:
            diff = {k: (v, asked.get(k)) for k, v in saved.items() if asked.get(k) != v}
            raise CheckpointError(f"{path} was trained with a different model ({diff}: saved vs asked)")
        load_state(self.raw_model, ckpt["model"], str(path))
        try:
            for opt, state in zip(self.optimizers, ckpt["optimizers"], strict=True):
                opt.load_state_dict(state)
            self.train_data.load_state_dict(ckpt["train_data"])
            if self.scaler and ckpt.get("scaler"):
                self.scaler.load_state_dict(ckpt["scaler"])
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise CheckpointError(f"{path} cannot be resumed here ({str(e).splitlines()[0]})") from None
        self.step, self.tokens_seen = ckpt["step"], ckpt["tokens"]
        self.train_seconds = ckpt.get("train_s", 0.0)  # absent from checkpoints written before the clock
        self.best_val, self.best_step = ckpt["best_val_loss"], ckpt["best_step"]
        set_rng_state(ckpt["rng"][self.dist.rank % len(ckpt["rng"])])
        return ckpt

    # -- the loop ---------------------------------------------------------------------------
    def train(self, resume: bool = False, stop_after: int | None = None,
              progress: bool = False) -> TrainResult:
        """Train until ``max_steps`` (or ``max_seconds``, or an evaluation at ``target_loss``, or
        Ctrl-C); see the module docstring.

        ``resume`` continues from ``out/last.pt``; ``stop_after`` stops after that many steps of
        this session as Ctrl-C would (for tests); ``progress`` shows a bar instead of log lines.
        """
        tc = self.config.train
        refused = None
        if self.dist.master:  # one rank checks: another rank could see rank 0's run.json as an earlier run
            try:
                check_out_dir(self.out, resume)
            except (ConfigError, FileExistsError) as e:
                refused = e
        if any_rank(refused is not None):  # every rank stops together
            raise refused or ConfigError(f"rank 0 refused the output folder {self.out}")
        self.prior_elapsed = self.load(self.out / "last.pt")["elapsed_s"] if resume else 0.0
        self.t0 = time.perf_counter()
        if self.record is not None:
            self.record.start(resume, self.raw_model)
            if self.out is not None:
                self.metrics_log = MetricsLog(self.out / "metrics.jsonl", self.step if resume else None)
                self.history = read_metrics(self.out / "metrics.jsonl") if resume else []
        bar = _bar(tc.max_steps, self.step) if progress and self.dist.master else None
        first_step, first_s = self.step, self.train_seconds  # this session's start on the training clock
        mark_step, mark_s, status = first_step, first_s, "finished"  # mark: where the log interval starts
        evaluated = self.step if resume else -1  # a resumed step was evaluated before it was saved
        final: dict[str, float] = {}
        try:
            with stop_on_sigint() as stop:
                while True:
                    out_of_time = bool(tc.max_seconds) and self.elapsed() >= tc.max_seconds
                    done = self.step >= tc.max_steps or any_rank(out_of_time)
                    due = tc.eval_interval and self.step % tc.eval_interval == 0
                    if evaluated != self.step and (self.step == 0 or due or done):
                        final = self._evaluate_and_save(done, bar)
                        evaluated = self.step
                        if not done and tc.target_loss and final.get("val", math.inf) <= tc.target_loss:
                            self.say(f"reached val loss {tc.target_loss:g} at step {self.step}", bar)
                            done = True
                    if done:
                        break
                    record = self.train_step()
                    if self.step % tc.log_interval == 0 or self.step == tc.max_steps:
                        interval_s = self.train_seconds - mark_s
                        record["tokens_per_s"] = self.step_tokens * (self.step - mark_step) / interval_s
                        self._add_mfu(record)
                        self._log(record, bar)
                        mark_step, mark_s = self.step, self.train_seconds
                    if bar is not None:
                        bar.update(1)
                    if tc.checkpoint_interval and self.step % tc.checkpoint_interval == 0:
                        self.save(f"ckpt_{self.step:06d}")
                        self.save("last")
                    stop_now = stop_after is not None and self.step - first_step >= stop_after
                    if any_rank(stop.requested or stop_now):
                        status = "interrupted"
                        self.save("last")
                        self.say(f"stopped at step {self.step}"
                                  + (f"; resume with --resume --out {self.out}" if self.out else ""), bar)
                        break
        except TrainingDiverged:
            status = "diverged"
            raise
        finally:
            if bar is not None:
                bar.close()
            session_s = self.train_seconds - first_s
            tps = self.step_tokens * (self.step - first_step) / session_s if session_s > 0 else 0.0
            result = TrainResult(self.raw_model, self.config, self.best_val, self.best_step, final, self.step,
                                 tps, self.elapsed(), self.train_seconds, status == "interrupted",
                                 self.history, self.meta)
            if self.record is not None:
                self.record.finish(status, result)
        return result

    def elapsed(self) -> float:
        """Wall seconds of this run so far, earlier sessions included."""
        return self.prior_elapsed + time.perf_counter() - self.t0

    def _evaluate_and_save(self, final: bool, bar) -> dict[str, float]:
        record = self.evaluate(self.config.train.final_eval_steps if final else None)
        better = self.improved(record.get("val_loss"))
        self._log(record, bar, " (best)" if better else "")
        if better:
            self.save("best")
        self.save("last")
        return {k[:-5]: v for k, v in record.items() if k.endswith("_loss")}

    def _log(self, record: dict, bar=None, note: str = "") -> None:
        if not self.dist.master:
            return
        record["elapsed_s"], record["train_s"] = self.elapsed(), self.train_seconds
        self.history.append(record)
        if self.metrics_log is not None:
            self.metrics_log.write(record)
        if bar is None or record["kind"] == "eval":
            self.say(format_record(record) + note, bar)

    def say(self, line: str, bar=None) -> None:
        """Print ``line`` on rank 0 through the trainer's log (above the progress bar, if any)."""
        if self.dist.master and self._print is not None:
            (bar.write if bar is not None else self._print)(line)


def _amp_dtype(dtype: str, device_type: str) -> torch.dtype | None:
    if dtype == "float32" or (dtype == "auto" and device_type != "cuda"):
        return None
    if dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def format_record(r: dict) -> str:
    """One console line for a metrics record."""
    if r["kind"] == "train":
        line = (f"step {r['step']:6d} | loss {r['loss']:.4f} | lr {r['lr']:.2e} | norm {r['grad_norm']:.3f}"
                f" | {r['tokens_per_s']:,.0f} tok/s")
        return line + (f" | mfu {100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "")
    skip = ("kind", "step", "tokens", "elapsed_s", "train_s")
    parts = [f"step {r['step']:6d} | eval"]
    parts += [f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()
              if k not in skip and not isinstance(v, (list, dict))]
    parts.append(f"{r.get('elapsed_s', 0):.0f} s")
    texts = [f"\n    {k}: {t!r}" for k, v in r.items() if isinstance(v, list)
             for t in v if isinstance(t, str)]
    return " | ".join(parts) + "".join(texts)


def _bar(total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)
