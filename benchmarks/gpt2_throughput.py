"""GPT-2 (124M) training throughput: tokens/s and MFU along the lecture's optimization ladder.

fp32 -> TF32 -> bf16 -> torch.compile -> flash attention -> vocab 50,304 -> fused AdamW, each
rung measured on the device at hand (``zth.gpt2.ladder``: it times the trainer's own step).
Rungs that make no sense there (TF32 and fused AdamW on a CPU; compile on a CPU unless
``--compile-on-cpu``) are reported as skipped. On a GPU a last row runs everything at
``--final-batch`` (the lecture's 64 x 1024). Results go to ``--out`` as JSON and markdown,
named after the device, with the command and the git revision (``$ZTH_GIT_REV`` where the
working tree is not a git checkout).

    python benchmarks/gpt2_throughput.py                       # CPU: batch 1 x 128, few steps
    python benchmarks/gpt2_throughput.py --out results/gpt2    # on an H100: 16 x 1024, then 64 x 1024
"""

from __future__ import annotations

import argparse
import platform
import re
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from zth.gpt2 import GPT2Config
from zth.gpt2.ladder import Settings, ladder_table, measure, speed_ladder
from zth.gpt2.train import PRESETS
from zth.storage import write_json, write_text_atomic
from zth.sysinfo import device_name, git_revision
from zth.train.perf import measure_matmul_flops, mfu, peak_flops

__all__ = ["device_slug", "ladder_meta", "main", "mfu_peak", "write_throughput"]


def device_slug(name: str) -> str:
    """A file-name form of a device's name: ``NVIDIA H100 80GB HBM3`` -> ``nvidia-h100-80gb-hbm3``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]


def mfu_peak(device: str) -> tuple[float, str]:
    """The FLOP/s that MFU is relative to, and what it is: the GPU's bf16 datasheet peak, or
    (CPUs, unlisted GPUs) a measured fp32 matmul."""
    peak = peak_flops(device, "bf16")
    if peak is not None:
        return peak, "bf16 dense datasheet peak"
    return measure_matmul_flops(device), "measured fp32 1024x1024 matmul"


def ladder_meta(device: str, model: str, batch: int, seq_len: int, steps: int, warmup: int, peak: float,
                peak_kind: str, command: str | None = None) -> dict:
    """What a throughput file records beside its rows (device, command, git revision, versions, shape)."""
    return {"device": device_name(device), "command": command or shlex.join([sys.executable, *sys.argv]),
            "git": git_revision() or "unknown", "torch": torch.__version__, "cuda": torch.version.cuda,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "model": model, "batch": batch, "seq_len": seq_len, "steps": steps, "warmup": warmup,
            "peak_flops": peak, "peak_kind": peak_kind}


def write_throughput(out: str | Path, meta: dict, rows: list[dict], final: dict | None = None,
                     prefix: str = "") -> tuple[Path, str]:
    """Write ``throughput-<device>.json`` and ``.md`` into ``out`` (what the GPT-2 chapter reads);
    returns the JSON file and the markdown table."""
    table = ladder_table(rows)
    if final and final.get("tokens_per_s"):
        table += (f"\n| all on, batch {final['batch']} | {final['tokens_per_s']:,.0f} | "
                  f"{final['step_ms']:,.0f} | {final['tokens_per_s'] / rows[0]['tokens_per_s']:.2f}x | "
                  f"{100 * final['mfu']:.1f}% |")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"throughput-{prefix}{device_slug(meta['device'])}"
    write_json(out / f"{stem}.json", {**meta, "rows": rows, "final": final})
    m = meta
    write_text_atomic(out / f"{stem}.md", (
        f"# GPT-2 {m['model']} throughput on {m['device']}\n\n`{m['command']}` at git {m['git']}, "
        f"torch {m['torch']}, {m['date']}. Batch {m['batch']} x {m['seq_len']}; MFU relative to the "
        f"{m['peak_kind']} ({m['peak_flops'] / 1e12:.3g} TFLOP/s).\n\n{table}\n"))
    return out / f"{stem}.json", table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", choices=["gpt2", "tiny"], default="gpt2",
                    help="GPT-2 124M, or the tiny preset's shape")
    ap.add_argument("--batch", type=int, default=None, help="micro-batch (default 16 on GPU, 1 on CPU)")
    ap.add_argument("--seq-len", type=int, default=None, help="default 1024 on GPU, 128 on CPU")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per rung (default 10 GPU, 3 CPU)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3 GPU, 1 CPU)")
    ap.add_argument("--final-batch", type=int, default=64,
                    help="GPU: all optimizations at this batch (0: no)")
    ap.add_argument("--compile-on-cpu", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--out", default="results/gpt2", help="folder for the results ('' to not write)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    batch = args.batch or (16 if cuda else 1)
    seq_len = args.seq_len or (1024 if cuda else 128)
    steps, warmup = args.steps or (10 if cuda else 3), args.warmup or (3 if cuda else 1)
    config = GPT2Config() if args.model == "gpt2" else replace(PRESETS["tiny"].model, vocab_size=50257)
    if seq_len > config.block_size:
        print(f"error: --seq-len {seq_len} exceeds the block size {config.block_size}", file=sys.stderr)
        return 2
    peak, peak_kind = mfu_peak(args.device)
    meta = ladder_meta(args.device, args.model, batch, seq_len, steps, warmup, peak, peak_kind)
    print(f"{meta['device']} | {args.model} B={batch} T={seq_len} | MFU vs {peak_kind} = "
          f"{peak / 1e12:.3g} TFLOP/s")
    rows: list[dict] = []

    def report(row: dict | None = None, final: dict | None = None) -> str:
        """Print a finished rung and rewrite the result files (a cut-off run keeps what it measured)."""
        if row is not None:
            rows.append(row)
            print(f"  {row['rung']:<20} " + (f"{row['tokens_per_s']:>12,.0f} tok/s" if row.get("tokens_per_s")
                                             else f"skipped: {row['skipped']}"), flush=True)
        if args.out:
            return write_throughput(args.out, meta, rows, final)[1]
        return ladder_table(rows)

    t0 = time.perf_counter()
    speed_ladder(config, batch, seq_len, steps, warmup, args.device, args.compile_on_cpu, peak,
                 progress=report)
    final = None
    if cuda and args.final_batch:
        best = Settings(**rows[-1]["settings"])
        try:
            final = measure(config, best, args.final_batch, seq_len, steps, warmup, args.device)
            final["mfu"] = mfu(final["flops_per_token"], final["tokens_per_s"], peak)
            final["batch"] = args.final_batch
        except torch.cuda.OutOfMemoryError:
            final = {"batch": args.final_batch, "skipped": "out of memory"}
    print(report(final=final))
    print(f"total {time.perf_counter() - t0:.0f} s" + (f"; results in {args.out}" if args.out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
