"""The training loop: batches, AdamW, the learning-rate schedule, evaluation, checkpoints, logs.

``train(cfg, out)`` trains a ``GPT`` on a text (tiny Shakespeare by default) and, given an
output folder, writes ``metrics.jsonl``, ``run.json``, ``best.pt`` (the lowest validation loss
so far) and ``last.pt`` (everything needed to resume). ``train(cfg, out, resume=True)`` continues
from ``last.pt`` exactly: the same batches, the same dropout masks, the same weights as a run that
was never stopped. Ctrl-C stops at the end of the current step and saves ``last.pt``.
``train_many(jobs)`` runs independent ``train`` calls side by side, one process and one CPU
thread each: small models gain little from a second thread, much from a second core.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import torch

import zth.data
from zth.gpt.checkpoint import (
    load_checkpoint,
    load_state,
    save_checkpoint,
    train_config_from_checkpoint,
)
from zth.gpt.config import TrainConfig, lr_at
from zth.gpt.data import CharTokenizer, amp_dtype, autocast, estimate_loss, get_batch, train_val_split
from zth.gpt.model import GPT
from zth.gpt2.optim import configure_adamw
from zth.runs import MetricsLog, read_metrics
from zth.storage import CheckpointError, write_json
from zth.sysinfo import device_name, git_revision, pick_device, usable_cores


@dataclass
class TrainResult:
    """What ``train`` returns: the model (best-val weights are in ``best.pt``), its numbers, its log."""

    model: GPT
    tokenizer: CharTokenizer
    config: TrainConfig
    best_val_loss: float
    best_step: int
    final: dict[str, float]  # the last evaluation: {"train": ..., "val": ...}
    step: int
    tokens_per_s: float  # training tokens per second of training time, this session
    elapsed_s: float  # wall time of all sessions, evaluations included
    interrupted: bool
    metrics: list[dict] = field(default_factory=list)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """``cfg``'s AdamW: decay on matrices and embeddings (2-D parameters) only, fused on CUDA."""
    return configure_adamw(model, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2))


@contextmanager
def _stop_on_sigint():
    """Turn the first Ctrl-C into a request to stop after the current step (main thread only)."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _rng_state(batch_gen: torch.Generator, device: torch.device) -> dict:
    state = {"batch": batch_gen.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, batch_gen: torch.Generator, device: torch.device) -> None:
    batch_gen.set_state(state["batch"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def train(cfg: TrainConfig, out: str | Path | None = None, *, resume: bool = False, text: str | None = None,
          tokenizer: CharTokenizer | None = None, init_model: torch.nn.Module | None = None,
          stop_after: int | None = None, log: Callable[[str], None] | None = print,
          progress: bool | None = None, command: str | None = None) -> TrainResult:
    """Train a ``GPT`` as ``cfg`` says; see the module docstring for what lands in ``out``.

    Args:
        cfg: the configuration (``zth.gpt.config.preset("book")``, say).
        out: folder for the logs and checkpoints; None writes nothing.
        resume: continue from ``out/last.pt`` (the model configuration must match).
        text: train on this text instead of ``cfg.dataset``.
        tokenizer: the vocabulary (default: the characters of ``text``).
        init_model: start from these weights (finetuning) instead of a fresh initialization.
        stop_after: stop after this many steps of this session, as an interruption would.
        log: receives a line per evaluation (None: silent).
        progress: a tqdm bar; default: only when stderr is a terminal.
        command: the command line recorded in ``run.json``.
    """
    out = Path(out) if out is not None else None
    device = pick_device(cfg.device)
    amp = amp_dtype(device, cfg.dtype)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    ckpt = None
    if not resume and out is not None and (out / "last.pt").exists():
        raise FileExistsError(f"{out} already holds a run: resume it or choose another output folder")
    if resume:
        if out is None:
            raise CheckpointError("resume needs the run's output folder")
        ckpt = load_checkpoint(out / "last.pt")
        saved = train_config_from_checkpoint(ckpt)
        tokenizer = CharTokenizer(ckpt["vocab"])
        if replace(cfg.model, vocab_size=tokenizer.vocab_size) != saved.model:
            diff = {k: (v, getattr(cfg.model, k)) for k, v in saved.model.to_dict().items()
                    if k != "vocab_size" and getattr(cfg.model, k) != v}
            raise CheckpointError(f"{out / 'last.pt'} was trained with a different model "
                                  f"({diff}: saved vs asked)")
    text = zth.data.text(cfg.dataset) if text is None else text
    tokenizer = tokenizer or CharTokenizer.from_text(text)
    cfg = replace(cfg, model=replace(cfg.model, vocab_size=tokenizer.vocab_size))
    data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_data, val_data = train_val_split(data, cfg.train_fraction)
    B, T = cfg.batch_size, cfg.model.block_size

    torch.manual_seed(cfg.seed)
    model = GPT(cfg.model)
    if init_model is not None:
        load_state(model, init_model.state_dict())
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    batch_gen = torch.Generator().manual_seed(cfg.seed)
    step, best_val, best_step, evaluated, prior_elapsed, final = 0, math.inf, -1, -1, 0.0, {}
    if ckpt is not None:
        load_state(model, ckpt["model"])
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
            _set_rng_state(ckpt["rng"], batch_gen, device)
            step, best_val, best_step = ckpt["step"], ckpt["best_val"], ckpt["best_step"]
            evaluated, prior_elapsed = ckpt["evaluated_step"], ckpt["elapsed_s"]
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise CheckpointError(f"{out / 'last.pt'} cannot be resumed ({e})") from None

    records: list[dict] = []
    metrics = MetricsLog(out / "metrics.jsonl", step if resume else None) if out is not None else None
    if resume and out is not None:
        records = read_metrics(out / "metrics.jsonl")
    started = datetime.now(timezone.utc)
    run_info = {"command": command, "device": device_name(device), "torch": torch.__version__,
                "git_revision": git_revision(), "started_at": started.isoformat(timespec="seconds"),
                "config": cfg.to_dict(), "params": model.num_params(), "status": "running"}
    if out is not None:
        if resume and (out / "run.json").is_file():
            previous = json.loads((out / "run.json").read_text(encoding="utf-8"))
            run_info["sessions"] = previous.get("sessions", []) + [
                {k: previous.get(k) for k in ("command", "device", "git_revision", "started_at", "wall_s")}]
        write_json(out / "run.json", run_info)

    def emit(record: dict) -> None:
        records.append(record)
        if metrics is not None:
            metrics.write(record)

    def payload(kind: str) -> dict:
        p = {"kind": kind, "model": model.state_dict(), "model_config": cfg.model.to_dict(),
             "vocab": tokenizer.vocab, "step": step, "best_val": best_val, "best_step": best_step}
        if kind == "last":
            p.update(train_config=cfg.to_dict(), optimizer=optimizer.state_dict(),
                     rng=_rng_state(batch_gen, device), evaluated_step=evaluated, elapsed_s=elapsed())
        return p

    fwd = torch.compile(model) if cfg.compile else model
    t0 = time.perf_counter()
    elapsed = lambda: prior_elapsed + time.perf_counter() - t0
    train_time, session_steps, interval_time, interval_steps = 0.0, 0, 0.0, 0
    show_bar = progress if progress is not None else (log is not None and _stderr_is_tty())
    bar = _bar(cfg.max_iters, step) if show_bar else None
    say = (bar.write if bar is not None else log) or (lambda s: None)

    def evaluate(iters: int) -> dict[str, float]:
        nonlocal best_val, best_step, evaluated
        losses = estimate_loss(model, {"train": train_data, "val": val_data}, iters, B, T,
                               seed=cfg.seed + 1, device=device, amp_dtype=amp, align=cfg.align)
        improved = losses["val"] < best_val
        if improved:
            best_val, best_step = losses["val"], step
        evaluated = step
        tps = B * T * session_steps / train_time if train_time > 0 else 0.0
        emit({"kind": "eval", "step": step, "train_loss": losses["train"], "val_loss": losses["val"],
              "lr": lr_at(step, cfg), "tokens_per_s": tps, "elapsed_s": elapsed()})
        say(f"step {step:>6}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}"
            f"{' (best)' if improved else ''}, {tps:,.0f} tokens/s, {elapsed():.0f} s")
        if out is not None:
            if improved:
                save_checkpoint(out / "best.pt", payload("best"))
            save_checkpoint(out / "last.pt", payload("last"))
        return losses

    interrupted = False
    with _stop_on_sigint() as stop:
        while step < cfg.max_iters:
            if step % cfg.eval_interval == 0 and evaluated != step:
                final = evaluate(cfg.eval_iters)
            t_step = time.perf_counter()
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = get_batch(train_data, B, T, batch_gen, device, cfg.align)
            with autocast(device, amp):
                _, loss = fwd(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            session_steps += 1
            interval_steps += 1
            if step % cfg.log_interval == 0 or step == cfg.max_iters:
                loss_value = loss.item()  # waits for the device: time after it
                interval_time += time.perf_counter() - t_step
                emit({"kind": "train", "step": step, "loss": loss_value, "lr": lr,
                      "tokens_per_s": B * T * interval_steps / interval_time, "elapsed_s": elapsed()})
                interval_time, interval_steps = 0.0, 0
            else:
                interval_time += time.perf_counter() - t_step
            train_time += time.perf_counter() - t_step
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False) if step % 10 == 0 else None
            if stop["stop"] or (stop_after is not None and session_steps >= stop_after):
                interrupted = True
                break
            if cfg.max_seconds and elapsed() >= cfg.max_seconds:
                break
    if not interrupted and evaluated != step:
        final = evaluate(cfg.final_eval_iters or cfg.eval_iters)
    elif interrupted:
        if out is not None:
            save_checkpoint(out / "last.pt", payload("last"))
        say(f"stopped at step {step}" + (f"; resume with --resume --out {out}" if out is not None else ""))
    if bar is not None:
        bar.close()
    tokens_per_s = B * T * session_steps / train_time if train_time > 0 else 0.0
    if out is not None:
        run_info.update(status="interrupted" if interrupted else "finished", wall_s=round(elapsed(), 2),
                        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), step=step,
                        best_val_loss=best_val, best_step=best_step, final_train_loss=final.get("train"),
                        final_val_loss=final.get("val"), tokens_per_s=round(tokens_per_s, 1))
        write_json(out / "run.json", run_info)
    return TrainResult(model=model, tokenizer=tokenizer, config=cfg, best_val_loss=best_val,
                       best_step=best_step, final=final, step=step, tokens_per_s=tokens_per_s,
                       elapsed_s=elapsed(), interrupted=interrupted, metrics=records)


def train_many(jobs: Sequence[dict], workers: int | None = None) -> list[TrainResult]:
    """``[train(**job) for job in jobs]``, run in ``workers`` processes of one thread each.

    Each job holds ``train``'s arguments (``cfg``, and any of ``text``, ``tokenizer``,
    ``init_model``, ``out``...); the runs are silent (no log lines, no progress bar). A run's
    result depends only on its job, not on how many workers there are or which one ran it.
    ``workers`` defaults to the usable CPU cores; with one worker (or one job) the jobs run here, one
    after the other, on one thread.
    """
    jobs = [{**job, "log": None, "progress": False} for job in jobs]
    workers = min(workers or usable_cores(), len(jobs))
    if workers <= 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return [train(**job) for job in jobs]
        finally:
            torch.set_num_threads(threads)
    spawn = multiprocessing.get_context("spawn")  # forking a process that has run OpenMP can hang
    with ProcessPoolExecutor(workers, spawn, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        return list(pool.map(_train_job, jobs))


def _train_job(job: dict) -> TrainResult:
    return train(**job)


def _stderr_is_tty() -> bool:
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def _bar(total: int, initial: int):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)


__all__ = ["TrainResult", "make_optimizer", "train", "train_many"]
