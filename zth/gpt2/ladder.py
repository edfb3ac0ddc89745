"""The lecture's optimization ladder, measured: each rung adds one speed-up to the previous ones.

fp32 -> TF32 matmuls -> bf16 autocast -> ``torch.compile`` -> flash attention (fused
``scaled_dot_product_attention`` instead of the explicit softmax) -> vocabulary padded to
50,304 -> fused AdamW. Every rung times ``Trainer.train_step`` itself (forward, backward,
clipping, optimizer step) on random tokens or on token shards, so it measures the code that
trains. Rungs that make no sense on the device at hand are reported as skipped, with the
reason, and the following rungs go on without them. Optionally a rung that runs out of GPU
memory is measured again at half the batch, and each rung's timing may be capped in seconds.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from zth.gpt2.model import GPT2, GPT2Config
from zth.train import RunConfig, TokenStream, TrainConfig, Trainer
from zth.train.perf import measure_matmul_flops, mfu, peak_flops


@dataclass(frozen=True)
class Settings:
    """One configuration of the speed-ups."""

    tf32: bool = False
    bf16: bool = False
    compile: bool = False
    flash: bool = False
    padded_vocab: bool = False
    fused_adamw: bool = False


RUNGS: list[tuple[str, str]] = [  # (field switched on, label)
    ("", "fp32"), ("tf32", "+ TF32"), ("bf16", "+ bf16 autocast"), ("compile", "+ torch.compile"),
    ("flash", "+ flash attention"), ("padded_vocab", "+ vocab 50,304"), ("fused_adamw", "+ fused AdamW"),
]


def skip_reason(rung: str, device: str, compile_on_cpu: bool = False) -> str | None:
    """Why ``rung`` is not measured on ``device`` (None: it is)."""
    cuda = device.startswith("cuda")
    if rung == "tf32" and not cuda:
        return "TF32 is a tensor-core format of NVIDIA GPUs"
    if rung == "bf16" and device == "cpu" and not _cpu_has_bf16():
        return "this CPU has no native bf16 matmuls (AMX / AVX512-BF16); autocast would emulate them"
    if rung == "fused_adamw" and not cuda:
        return "the trainer fuses AdamW on CUDA only"
    if rung == "compile" and not cuda and not compile_on_cpu:
        return "compiling takes minutes on a small CPU (opt in with compile_on_cpu)"
    if rung == "compile" and cuda and torch.cuda.get_device_capability(device)[0] < 7:
        return "torch.compile's Triton kernels need compute capability >= 7.0"
    return None


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def measure(config: GPT2Config, settings: Settings, batch: int, seq_len: int, steps: int = 10,
            warmup: int = 3, device: str = "cpu", seed: int = 0,
            shards: Sequence[str | Path | np.ndarray] | None = None,
            max_seconds: float | None = None) -> dict:
    """Tokens/s of ``Trainer.train_step`` under ``settings`` (median step time after ``warmup``).

    ``shards`` (token shard files or arrays) replace the random tokens; ``max_seconds`` ends
    the timed steps early once they took that long (after at least three of them).
    """
    cfg = replace(config, flash=settings.flash)
    if settings.padded_vocab:
        cfg = cfg.padded(128)
    torch.manual_seed(seed)
    model = GPT2(cfg)
    if shards is None:
        n = batch * seq_len * (steps + warmup) + 1
        shards = [np.random.default_rng(seed).integers(0, config.vocab_size, n).astype(np.uint16)]
    tc = TrainConfig(batch_size=batch, seq_len=seq_len, max_steps=steps + warmup, warmup_steps=1,
                     compile=settings.compile, dtype="bfloat16" if settings.bf16 else "float32",
                     tf32=settings.tf32, fused_adamw=settings.fused_adamw, device=device)
    trainer = Trainer(model, RunConfig(cfg, tc), TokenStream(list(shards), batch, seq_len), log=None)
    try:
        times = []
        for i in range(steps + warmup):
            rec = trainer.train_step()
            if i >= warmup:
                times.append(batch * seq_len / rec["tokens_per_s"])
                if max_seconds is not None and sum(times) >= max_seconds and len(times) >= min(3, steps):
                    break
        dt = float(np.median(times))
        return {"tokens_per_s": batch * seq_len / dt, "step_ms": dt * 1000, "batch": batch,
                "steps": len(times), "flops_per_token": model.flops_per_token(seq_len), "loss": rec["loss"]}
    finally:
        del trainer, model
        _free(device, settings.compile)


def _free(device: str, compiled: bool = True) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    if compiled:
        torch._dynamo.reset()


# rungs that need much less activation memory than the one before: a batch that did not fit
# before is tried again on them (the others start from the last batch that fitted)
_FRESH_BATCH = ("", "bf16", "flash")


def speed_ladder(config: GPT2Config, batch: int, seq_len: int, steps: int = 10, warmup: int = 3,
                 device: str = "cpu", compile_on_cpu: bool = False, peak: float | None = None,
                 progress=None, shards: Sequence[str | Path | np.ndarray] | None = None,
                 max_seconds: float | None = None, shrink_on_oom: bool = False,
                 stop_at: float | None = None, keep_going: bool = False) -> list[dict]:
    """Measure every rung; one dict per rung with tokens/s, speed-up over fp32 and MFU.

    ``peak`` (FLOP/s) defaults to the GPU's bf16 dense datasheet peak, or on a CPU to the
    measured throughput of a large fp32 matmul (so CPU MFU is relative to what the CPU's
    matmul achieves, not to a datasheet). ``shards`` and ``max_seconds`` go to :func:`measure`.
    ``shrink_on_oom`` measures a rung that runs out of memory again at half the batch (each
    row says its ``batch``); rungs not begun by ``stop_at`` (a ``time.perf_counter()`` time)
    are skipped. ``keep_going`` reports a rung that raises as failed, with the error, and goes
    on without its speed-up, as for a skipped rung.
    """
    if peak is None:
        peak = peak_flops(device, "bf16") or measure_matmul_flops(device)
    settings, rows, base, fits = Settings(), [], None, batch
    for field, label in RUNGS:
        reason = skip_reason(field, device, compile_on_cpu) if field else None
        if reason is None and stop_at is not None and time.perf_counter() >= stop_at:
            reason = "out of time (the caller's time cap)"
        row = {"rung": label, "skipped": reason}
        if reason is None:
            before = settings
            if field:
                settings = replace(settings, **{field: True})
            t0 = time.perf_counter()
            b, retry = (batch if field in _FRESH_BATCH else fits), shrink_on_oom
            while True:
                try:
                    row.update(measure(config, settings, b, seq_len, steps, warmup, device, shards=shards,
                                       max_seconds=max_seconds))
                    row["skipped"] = None
                    break
                except torch.cuda.OutOfMemoryError:
                    row["skipped"] = f"out of memory at batch {b}"
                except Exception as e:
                    if not keep_going:
                        raise
                    first = (str(e).strip().splitlines() or [""])[0][:300]
                    row["skipped"], settings, retry = f"failed: {type(e).__name__}: {first}", before, False
                _free(device)  # outside the handler: the failed step's tensors are released by now
                if not retry or b == 1:
                    break
                b //= 2
            if row["skipped"] is None:
                fits = b
                base = base or row["tokens_per_s"]
                row["speedup"] = row["tokens_per_s"] / base
                row["mfu"] = mfu(row["flops_per_token"], row["tokens_per_s"], peak)
            row["seconds"] = time.perf_counter() - t0
        row["settings"] = settings.__dict__.copy()
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows


def ladder_table(rows: list[dict]) -> str:
    """The ladder as a markdown table (with a batch column where the rungs' batches differ)."""
    batches = {r.get("batch") for r in rows if r.get("tokens_per_s") is not None}
    by_batch = len(batches) > 1
    out = ["| rung |" + (" batch |" if by_batch else "") + " tokens/s | step (ms) | speed-up | MFU |",
           "|---|" + ("---:|" if by_batch else "") + "---:|---:|---:|---:|"]
    for r in rows:
        if r.get("tokens_per_s") is None:
            out.append(f"| {r['rung']} |" + (" |" if by_batch else "") + f" skipped: {r['skipped']} | | | |")
        else:
            util = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "n/a"
            out.append(f"| {r['rung']} |" + (f" {r['batch']} |" if by_batch else "")
                       + f" {r['tokens_per_s']:,.0f} | {r['step_ms']:,.0f} | {r['speedup']:.2f}x | {util} |")
    return "\n".join(out)
