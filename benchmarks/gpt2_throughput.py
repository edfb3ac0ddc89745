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
import json
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
from zth.sysinfo import device_name, git_revision
from zth.train.perf import measure_matmul_flops, mfu, peak_flops


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
    name = device_name(args.device)
    peak = peak_flops(args.device, "bf16")
    peak_kind = "bf16 dense datasheet peak"
    if peak is None:
        peak, peak_kind = measure_matmul_flops(args.device), "measured fp32 1024x1024 matmul"
    print(f"{name} | {args.model} B={batch} T={seq_len} | MFU vs {peak_kind} = {peak / 1e12:.3g} TFLOP/s")
    meta = {"device": name, "command": shlex.join([sys.executable, *sys.argv]),
            "git": git_revision() or "unknown",
            "torch": torch.__version__, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "model": args.model, "batch": batch,
            "seq_len": seq_len, "steps": steps, "warmup": warmup, "peak_flops": peak, "peak_kind": peak_kind}
    rows: list[dict] = []

    def report(row: dict | None = None, final: dict | None = None) -> str:
        """Print a finished rung and rewrite the result files (a cut-off run keeps what it measured)."""
        if row is not None:
            rows.append(row)
            print(f"  {row['rung']:<20} " + (f"{row['tokens_per_s']:>12,.0f} tok/s" if row.get("tokens_per_s")
                                             else f"skipped: {row['skipped']}"), flush=True)
        table = ladder_table(rows)
        if final and final.get("tokens_per_s"):
            table += (f"\n| all on, batch {final['batch']} | {final['tokens_per_s']:,.0f} | "
                      f"{final['step_ms']:,.0f} | {final['tokens_per_s'] / rows[0]['tokens_per_s']:.2f}x | "
                      f"{100 * final['mfu']:.1f}% |")
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]
            record = {**meta, "rows": rows, "final": final}
            (out / f"throughput-{slug}.json").write_text(json.dumps(record, indent=1) + "\n")
            (out / f"throughput-{slug}.md").write_text(
                f"# GPT-2 {args.model} throughput on {name}\n\n`{meta['command']}` at git {meta['git']}, "
                f"torch {torch.__version__}, {meta['date']}. Batch {batch} x {seq_len}; MFU relative to the "
                f"{peak_kind} ({peak / 1e12:.3g} TFLOP/s).\n\n{table}\n")
        return table

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
