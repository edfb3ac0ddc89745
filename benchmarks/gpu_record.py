"""The GPU record: one command that checks the GPU half of zth on one CUDA GPU in under 9 minutes.

    PYTHONPATH=. python benchmarks/gpu_record.py --data-dir DATA --out OUT             # the record
    PYTHONPATH=. python benchmarks/gpu_record.py --data-dir DATA --out OUT --only lecture9   # one part again
    PYTHONPATH=. python benchmarks/gpu_record.py --data-dir DATA --out /tmp/rec --smoke   # CPU, tiny shapes

Parts, in this order, each in a fresh Python process with a hard time cap (a part that fails
or runs out of time is recorded as such, with what it measured, and the others go on):

* ``check``: a small random GPT-2 gives the same logits on the CPU (float32) and the GPU (float32
  within 1e-4 of the largest logit, bf16 autocast within 2e-2); one exact-resume round trip on the
  GPU (8 steps straight, or 4, stop, resume to 8: equal weights); a two-process ``torchrun`` run
  equal to a one-process run if there are two GPUs, otherwise skipped and said so;
* ``lecture7``: the ``shakespeare`` preset (the lecture's 10,788,929-parameter run, 5,000 steps of
  64 x 256) through ``zth.gpt.train.train``, bf16 autocast, eager (see ``CAPS``): target val <= 1.47;
* ``llama``: the ``stories260K`` preset through ``zth.llama.train``, exported to llama2.c, read
  back with ``load_llama2c``: equal weights and logits;
* ``lecture9``: the optimization ladder of GPT-2 124M (``zth.gpt2.ladder``) at micro-batch
  64 x 1,024 (half the batch on out-of-memory) on token shards of tiny Shakespeare: tokens/s and
  MFU against the GPU's bf16 datasheet peak; target >= 50% MFU at the last rung.

``--data-dir`` is a folder of the course's data as ``zth.data`` verifies it (``tinyshakespeare.txt``,
``tinystories/``, and ``tiktoken_cache/`` with tiktoken's GPT-2 files, as ``zth data fetch --all``
puts into ``ZTH_CACHE_DIR`` and ``TIKTOKEN_CACHE_DIR``); nothing is downloaded. Everything is
written under ``--out``, eight files laid out as ``results/`` is: ``gpu_record.json`` and ``.md``,
``gpt/<run>/`` and ``llama/<run>/`` (``metrics.jsonl``, ``run.json``) and
``gpt2/throughput-<device>.json`` and ``.md`` (no log file: the console shows everything, and a
part that fails keeps its last lines of output in ``gpu_record.json``). ``--smoke`` runs the same
code on the CPU with tiny shapes and a few steps (the test suite does). Exit status: 0 when every
part ran, 1 when one failed or ran out of time, 2 on bad input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a checkout without PYTHONPATH
    sys.path.insert(0, str(ROOT))

from zth.command import ArgumentParser, fail, parse  # noqa: E402
from zth.storage import write_json, write_text_atomic  # noqa: E402

PROG = "benchmarks/gpu_record.py"
FP32_TOL, BF16_TOL = 1e-4, 2e-2  # CPU-vs-GPU logits: max |difference| / max |CPU logit|
LECTURE7_TARGET, MFU_TARGET = 1.47, 0.50
RUNG_SECONDS = 6.0  # timed steps per ladder rung stop after this long (after 3 of them at least)
GRACE_S = 10.0  # a part aims to end this long before its cap, when it is killed
LOG_TAIL = 40  # lines of a part's output kept in the record when it fails


@dataclass(frozen=True)
class Part:
    cap_s: float  # the part's whole wall time on the GPU (process start included); killed beyond it
    smoke_cap_s: float
    datasets: tuple[str, ...]  # zth.data names it reads
    tiktoken: bool  # needs tiktoken's GPT-2 files
    what: str


# Expected on an H100/H200 (the sum of the caps, 510 s, is the record's limit; expected ~5.5 min):
# check ~20 s (small models; +30 s with two GPUs); lecture7 ~60-120 s (5,000 steps of ~10-20 ms,
# eager: compiling (~40 s, and again for evaluation mode) would not pay for itself on this small,
# launch-bound model); llama ~20 s (400 steps of a 0.3M model, tokenizer training on the CPU);
# lecture9 ~200 s: four compiled rungs (~40 s each, the last one hits the cache) plus a few dozen
# steps per rung, at most RUNG_SECONDS timed.
CAPS = {
    "check": Part(45, 120, (), False, "CPU-vs-GPU logits, exact resume, torchrun"),
    "lecture7": Part(165, 120, ("shakespeare",), False, "Lecture 7's shakespeare run"),
    "llama": Part(50, 120, ("tinystories_train", "tinystories_valid"), False, "stories260K and llama2.c"),
    "lecture9": Part(250, 150, ("shakespeare",), True, "GPT-2 124M optimization ladder"),
}


@dataclass
class Context:
    """What a part needs: where to write, on which device, until when."""

    out: Path
    device: str
    smoke: bool
    deadline: float  # time.time() by which the part must be done
    command: str
    slug: str  # the device, as file names spell it
    torchrun: bool = False  # the two-process check on the CPU too (smoke runs)
    progress: Callable[[dict], None] = lambda result: None  # save partial results
    runs: list[Path] = field(default_factory=list)  # the run folders this part writes

    @property
    def scratch(self) -> Path:
        return self.out / "_scratch"

    def left(self) -> float:
        return self.deadline - time.time()

    def run_dir(self, family: str, name: str) -> Path:
        """A fresh ``OUT/family/name`` (a previous record's folder of that name is replaced)."""
        path = self.out / family / (f"smoke-{name}" if self.smoke else name)
        shutil.rmtree(path, ignore_errors=True)
        self.runs.append(path)
        self.progress({"run": str(path.relative_to(self.out))})
        return path


# ------------------------------------------------------------------------------------ the parts
def part_check(ctx: Context) -> dict:
    """CPU-vs-GPU logits, an exact-resume round trip, and torchrun with two GPUs."""
    import torch

    from zth.gpt2 import GPT2, GPT2Config

    cfg = GPT2Config(block_size=64, vocab_size=512, n_layer=2, n_head=4, n_embd=128)
    torch.manual_seed(0)
    model = GPT2(cfg).eval()
    idx = torch.randint(0, cfg.vocab_size, (4, cfg.block_size))
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    with torch.no_grad():
        ref = model(idx)[0]
        on_device = model.to(ctx.device)
        fp32 = on_device(idx.to(ctx.device))[0].float().cpu()
        with torch.autocast(device_type=torch.device(ctx.device).type, dtype=torch.bfloat16):
            bf16 = on_device(idx.to(ctx.device))[0].float().cpu()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    scale = ref.abs().max().item()
    out = {"logits_fp32": _compare(ref, fp32, FP32_TOL, scale),
           "logits_bf16": _compare(ref, bf16, BF16_TOL, scale)}
    ctx.progress(out)
    out["resume"] = _resume_round_trip(ctx)
    ctx.progress(out)
    out["torchrun"] = _torchrun_check(ctx)
    out["ok"] = (out["logits_fp32"]["ok"] and out["logits_bf16"]["ok"] and out["resume"]["equal"]
                 and out["torchrun"].get("ok", True))
    return out


def _compare(ref, got, tol: float, scale: float) -> dict:
    diff = (ref - got).abs().max().item()
    return {"max_abs_diff": diff, "max_abs_logit": scale, "relative": diff / scale, "tolerance": tol,
            "ok": diff <= tol * scale}


def _resume_round_trip(ctx: Context, steps: int = 8) -> dict:
    """Train ``steps`` steps; train half, stop, resume to ``steps`` from another initialization;
    and train ``steps`` again (is the device itself deterministic?). Dropout on, so the restored
    random states matter."""
    import numpy as np
    import torch

    from zth.gpt2 import GPT2, GPT2Config
    from zth.train import RunConfig, TokenStream, TrainConfig, Trainer

    torch.use_deterministic_algorithms(True, warn_only=True)
    cfg = GPT2Config(block_size=32, vocab_size=256, n_layer=2, n_head=2, n_embd=64, dropout=0.1)
    tc = TrainConfig(batch_size=4, seq_len=32, max_steps=steps, lr=1e-3, warmup_steps=2,
                     eval_interval=steps // 2, eval_steps=2, log_interval=1, device=ctx.device)
    data = np.random.default_rng(0).integers(0, cfg.vocab_size, 20_000).astype(np.uint16)

    def trainer(out: Path, seed: int = 0) -> Trainer:
        torch.manual_seed(seed)
        return Trainer(GPT2(cfg), RunConfig(cfg, tc), TokenStream([data[:16_000]], 4, 32),
                       {"val": TokenStream([data[16_000:]], 4, 32)}, out=out, log=None)

    root = ctx.scratch / "resume"
    shutil.rmtree(root, ignore_errors=True)
    full = trainer(root / "full").train()
    again = trainer(root / "again").train()
    trainer(root / "part").train(stop_after=steps // 2)
    resumed = trainer(root / "part", seed=1)
    resumed.train(resume=True)
    shutil.rmtree(root, ignore_errors=True)
    pairs = list(zip(full.model.parameters(), resumed.raw_model.parameters(), strict=True))
    repeat = list(zip(full.model.parameters(), again.model.parameters(), strict=True))
    names = {torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}
    dtype = names.get(resumed.amp_dtype, "float32")
    return {"steps": steps, "stopped_at": steps // 2, "dtype": dtype,
            "equal": all(torch.equal(p, q) for p, q in pairs),
            "max_abs_diff": max((p - q).abs().max().item() for p, q in pairs),
            "repeat_equal": all(torch.equal(p, q) for p, q in repeat)}


def _torchrun_check(ctx: Context) -> dict:
    """Two processes under torchrun (two GPUs; two gloo processes in a smoke run) against one."""
    import math

    import numpy as np
    import torch

    from zth.gpt2.shards import write_shards
    from zth.gpt2.train import main as gpt2_train
    from zth.runs import read_metrics

    cuda = ctx.device.startswith("cuda")
    if cuda and torch.cuda.device_count() < 2:
        return {"skipped": f"{torch.cuda.device_count()} GPU visible; a two-process torchrun needs two"}
    if not cuda and not ctx.torchrun:
        return {"skipped": "a CPU smoke run (--torchrun runs two gloo processes)"}
    root = ctx.scratch / "torchrun"
    shutil.rmtree(root, ignore_errors=True)
    write_shards([np.random.default_rng(1).integers(0, 64, 3000).astype(np.uint16)], root / "data", "rand",
                 shard_tokens=2000, val_tokens=500)

    def args(out: str, eval_steps: int) -> list[str]:
        return ["--data", str(root / "data"), "--out", str(root / out), "--device", "cuda" if cuda else "cpu",
                "--quiet", "--set", "hellaswag=off", "n_layer=2", "n_head=2", "n_embd=32", "vocab_size=64",
                "block_size=16", "seq_len=16", "batch_size=2", "total_batch_tokens=128", "max_steps=4",
                "warmup_steps=2", "eval_interval=2", f"eval_steps={eval_steps}", "log_interval=1",
                "dtype=float32", "tf32=false"]

    # one process: 4 accumulation steps and 4 validation batches; two: 2 + 2 each
    if gpt2_train(args("one", 4)) != 0:
        return {"ok": False, "error": "the one-process run failed"}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "zth.gpt2.train", *args("two", 2)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=max(10.0, ctx.left() - 5))
    if proc.returncode != 0:
        lines = proc.stderr.splitlines()
        first = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "")
        return {"ok": False, "error": f"torchrun exited with {proc.returncode}: {first[:300]}",
                "stderr": proc.stderr[-3000:]}
    one, two = read_metrics(root / "one" / "metrics.jsonl"), read_metrics(root / "two" / "metrics.jsonl")
    worst = max((abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for a, b in zip(one, two, strict=True)
                 for k in ("loss", "val_loss") if k in a), default=math.inf)
    world = json.loads((root / "two" / "run.json").read_text())["world_size"]
    shutil.rmtree(root, ignore_errors=True)
    return {"processes": world, "records": len(two), "max_relative_loss_diff": worst,
            "ok": world == 2 and len(one) == len(two) and worst <= 1e-4}


def part_lecture7(ctx: Context) -> dict:
    """The lecture's run to its end: the shakespeare preset, bf16 autocast."""
    from zth.gpt.config import preset
    from zth.gpt.train import train
    from zth.train import apply_overrides

    cfg = preset("shakespeare")
    changes: dict[str, object] = {"device": ctx.device, "dtype": "bfloat16", "compile": False}
    if ctx.smoke:  # the same code, tiny shapes, a few steps, fp32 on the CPU
        changes.update(n_layer=1, n_head=2, n_embd=32, block_size=32, batch_size=4, max_steps=6,
                       eval_interval=3, eval_steps=2, log_interval=2, dtype="float32")
    changes["max_seconds"] = max(5.0, ctx.left() - 10)  # leave time for the last evaluation
    cfg = apply_overrides(cfg, changes)
    run = ctx.run_dir("gpt", f"shakespeare-{ctx.slug}")
    result = train(cfg, run, progress=False, command=ctx.command, preset_name="shakespeare")
    best = result.best_val_loss
    return {"run": str(run.relative_to(ctx.out)), "params": result.model.num_params(), "steps": result.step,
            "max_steps": cfg.train.max_steps, "finished": result.step >= cfg.train.max_steps,
            "best_val_loss": best, "best_step": result.best_step, "final_val_loss": result.final.get("val"),
            "run_wall_s": result.elapsed_s, "tokens_per_s": result.tokens_per_s, "dtype": cfg.train.dtype,
            "compile": cfg.train.compile, "target": f"val <= {LECTURE7_TARGET}",
            "met": result.step >= cfg.train.max_steps and best <= LECTURE7_TARGET}


def part_llama(ctx: Context) -> dict:
    """stories260K trained for its book preset, exported to llama2.c, read back: equal logits."""
    import torch

    from zth.llama.llama2c import export_llama2c, load_llama2c
    from zth.llama.train import PRESETS, prepare_stories, train_llama
    from zth.train import apply_overrides

    changes: dict[str, object] = {"device": ctx.device}
    if ctx.smoke:
        changes.update(vocab_size=300, max_steps=4, eval_interval=2, eval_steps=1, batch_size=2, seq_len=32,
                       total_batch_tokens=64)
    changes["max_seconds"] = max(5.0, ctx.left() - 10)
    cfg = apply_overrides(PRESETS["stories260K"].copy(), changes)
    data = prepare_stories(cfg.model.vocab_size, cfg.data.train_text, cfg.data.val_text)
    run = ctx.run_dir("llama", f"stories260K-{ctx.slug}")
    model, result = train_llama(cfg, data, run, command=ctx.command, preset="stories260K")
    path = ctx.scratch / "stories260K.bin"
    size = export_llama2c(model, path)
    back = load_llama2c(path).to(ctx.device).eval()
    path.unlink()
    model.eval()
    theirs = back.state_dict()
    same_weights = all(torch.equal(v.cpu(), theirs[k].cpu()) for k, v in model.state_dict().items())
    idx = torch.as_tensor(data.val[:cfg.model.max_seq_len].astype("int64")).view(1, -1).to(ctx.device)
    with torch.no_grad():
        a, b = model(idx)[0], back(idx)[0]
    return {"run": str(run.relative_to(ctx.out)), "params": model.num_params(), "steps": result.step,
            "max_steps": cfg.train.max_steps, "best_val_loss": result.best_val_loss,
            "run_wall_s": result.elapsed_s, "tokens_per_s": result.tokens_per_s, "export_bytes": size,
            "weights_equal": same_weights, "logits_equal": torch.equal(a, b),
            "max_abs_diff": (a - b).abs().max().item(), "ok": same_weights and torch.equal(a, b)}


def part_lecture9(ctx: Context) -> dict:
    """GPT-2 124M's optimization ladder on token shards of tiny Shakespeare."""
    from gpt2_throughput import ladder_meta, mfu_peak, write_throughput

    from zth.data import text
    from zth.gpt2 import GPT2Config
    from zth.gpt2.ladder import ladder_table, speed_ladder
    from zth.gpt2.prepare import prepare, text_documents
    from zth.gpt2.train import PRESETS
    from zth.train.data import find_shards

    shards = ctx.scratch / "shakespeare-gpt2"
    shutil.rmtree(shards, ignore_errors=True)
    prepare(text_documents(text("shakespeare")), shards, "shakespeare", val_tokens=32_768)
    if ctx.smoke:  # the tiny preset's depth, narrower, and GPT-2's own vocabulary
        config = replace(PRESETS["tiny"].model, vocab_size=50257, n_layer=1, n_embd=16, n_head=2)
        batch, seq_len, steps, warmup, model = 1, 16, 1, 1, "smoke"
    else:
        config, batch, seq_len, steps, warmup, model = GPT2Config(), 64, 1024, 30, 3, "gpt2"
    peak, peak_kind = mfu_peak(ctx.device)
    meta = ladder_meta(ctx.device, model, batch, seq_len, steps, warmup, peak, peak_kind, ctx.command)
    meta["data"] = "tiny Shakespeare as GPT-2 tokens (zth.gpt2.prepare)"
    meta["max_seconds_per_rung"] = RUNG_SECONDS
    rows: list[dict] = []
    prefix = "smoke-" if ctx.smoke else ""

    def summary() -> dict:
        file = write_throughput(ctx.out / "gpt2", meta, rows, prefix=prefix)[0]
        done = [r for r in rows if r.get("tokens_per_s")]
        last = done[-1] if done else {}
        mfu = last.get("mfu")
        return {"file": str(file.relative_to(ctx.out)), "batch": batch, "seq_len": seq_len, "rows": rows,
                "table": ladder_table(rows), "last_rung": last.get("rung"), "last_tokens_per_s":
                last.get("tokens_per_s"), "last_mfu": mfu, "last_batch": last.get("batch"),
                "target": f"MFU >= {MFU_TARGET:.0%} at the last rung", "met": mfu is not None
                and mfu >= MFU_TARGET and last.get("rung") == rows[-1]["rung"] and len(rows) == 7}

    def progress(row: dict) -> None:
        rows.append(row)
        shown = (f"{row['tokens_per_s']:,.0f} tok/s, batch {row['batch']}, {row['steps']} steps, "
                 f"MFU {row['mfu']:.1%}" if row.get("tokens_per_s") else f"skipped: {row['skipped']}")
        print(f"  {row['rung']:<20} {shown} ({row.get('seconds', 0):.0f} s)", flush=True)
        ctx.progress(summary())

    train_files = find_shards(shards, "train")
    speed_ladder(config, batch, seq_len, steps, warmup, ctx.device, peak=peak, progress=progress,
                 shards=train_files, max_seconds=RUNG_SECONDS, shrink_on_oom=True, keep_going=True,
                 stop_at=time.perf_counter() + ctx.left() - (5 if ctx.smoke else 20))
    shutil.rmtree(shards, ignore_errors=True)
    return summary()


PARTS: dict[str, Callable[[Context], dict]] = {"check": part_check, "lecture7": part_lecture7,
                                               "llama": part_llama, "lecture9": part_lecture9}


# ---------------------------------------------------------------------------- one part (child)
def run_part(name: str, args: argparse.Namespace) -> int:
    """Run one part in this process; its result goes to ``OUT/_scratch/<name>.json``."""
    from gpt2_throughput import device_slug

    from zth.sysinfo import device_name

    out, slug = args.out, device_slug(device_name(args.device))
    ctx = Context(out, args.device, args.smoke, args.deadline, args.command, slug, args.torchrun)
    ctx.scratch.mkdir(parents=True, exist_ok=True)
    result_file = ctx.scratch / f"{name}.json"
    partial: dict = {}

    def save(result: dict) -> None:
        partial.clear()
        partial.update(result)
        write_json(result_file, {"status": "running", **result})

    ctx.progress = save
    try:
        result = {"status": "ok", **PARTS[name](ctx)}
    except Exception as e:  # noqa: BLE001 - record any failure, the other parts go on
        traceback.print_exc()
        result = {**partial, "status": "failed", "error": f"{type(e).__name__}: {str(e).strip()[:2000]}"}
    finally:
        _drop_checkpoints(ctx.runs)
    write_json(result_file, result)
    return 0 if result["status"] == "ok" else 1


def _drop_checkpoints(runs: list[Path]) -> None:
    """Delete the ``*.pt`` files of these run folders: checkpoints are not part of the record."""
    for run in runs:
        for pt in run.glob("*.pt"):
            pt.unlink()


# ------------------------------------------------------------------------- the record (parent)
def _parser() -> ArgumentParser:
    ap = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True,
                    help="the course's data (ZTH_DATA_DIR's layout, with tiktoken_cache/)")
    ap.add_argument("--out", required=True, help="the record's folder (copy its contents into results/)")
    ap.add_argument("--only", nargs="+", choices=list(PARTS), metavar="PART",
                    help=f"run only these parts ({', '.join(PARTS)}); the record keeps the others' results")
    ap.add_argument("--smoke", action="store_true", help="the same code on the CPU: tiny shapes, a few steps")
    ap.add_argument("--device", default="cuda", help="the GPU (default cuda; --smoke uses the CPU)")
    ap.add_argument("--cap", nargs="+", action="extend", default=[], metavar="PART=SECONDS",
                    help="another time cap for a part (e.g. a rerun with more time: --cap lecture7=240)")
    ap.add_argument("--torchrun", action="store_true",
                    help="with --smoke: run the two-process torchrun check on the CPU (gloo) too")
    ap.add_argument("--child", choices=list(PARTS), help=argparse.SUPPRESS)  # one part, in this process
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--command", help=argparse.SUPPRESS)
    return ap


def _missing_data(data_dir: Path, parts: list[str]) -> list[str]:
    from zth.data import REGISTRY, TIKTOKEN_FILES

    missing = [REGISTRY[n].filename for p in parts for n in CAPS[p].datasets
               if not (data_dir / REGISTRY[n].filename).is_file()]
    cache = Path(os.environ["TIKTOKEN_CACHE_DIR"])
    if any(CAPS[p].tiktoken for p in parts):
        for url in TIKTOKEN_FILES["gpt2"]:
            name = hashlib.sha1(url.encode()).hexdigest()  # tiktoken's cache file name
            if not (cache / name).is_file():
                missing.append(f"{cache / name} (tiktoken's {url.rsplit('/', 1)[1]})")
    return sorted(set(missing))


def _run_child(name: str, args, command: str, cap: float) -> tuple[str, float, list[str]]:
    """Run part ``name`` in a fresh process (its own process group), its output shown on the
    console; returns how it ended, its wall seconds and its last lines of output."""
    deadline = time.time() + cap - GRACE_S  # the part's own aim; killed at the cap
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--out", str(args.out),
           "--data-dir", str(args.data_dir), "--device", args.device, "--deadline", f"{deadline:.3f}",
           "--command", command]
    cmd += ["--smoke"] if args.smoke else []
    cmd += ["--torchrun"] if args.torchrun else []
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    if args.smoke:  # tiny tensors: one thread (thread hand-offs cost more than they save)
        env["OMP_NUM_THREADS"] = "1"
    if name == "check":  # deterministic cuBLAS for the exact-resume round trip
        env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    t0 = time.perf_counter()
    group = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **group)  # a process group, not a session: whoever ends us ends it too
    tail: deque[str] = deque(maxlen=LOG_TAIL)

    def tee() -> None:
        for line in proc.stdout:
            sys.stdout.write(f"[{name}] {line}")
            sys.stdout.flush()
            tail.append(line.rstrip("\n"))

    reader = threading.Thread(target=tee, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=cap)
        ended = "exit 0" if code == 0 else f"exit {code}"
    except subprocess.TimeoutExpired:
        ended = f"killed after its cap of {cap:.0f} s"
    finally:
        if proc.poll() is None:  # out of time, or this process is being stopped
            os.killpg(proc.pid, signal.SIGKILL)  # the part's process group: it and its workers
            proc.wait()
    reader.join(timeout=10)
    return ended, time.perf_counter() - t0, list(tail)


def _environment(device: str, command: str) -> dict:
    import torch

    from zth.sysinfo import device_name, git_revision

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    cuda = device.startswith("cuda")
    return {"device": device_name(device), "device_count": torch.cuda.device_count() if cuda else 0,
            "torch": torch.__version__, "cuda": torch.version.cuda, "triton": triton_version,
            "python": platform.python_version(), "git": git_revision() or "unknown", "command": command}


def record_rows(parts: dict) -> list[dict]:
    """The measured table: one row per number, with its target and whether it was met."""
    rows = []

    def add(part: str, what: str, value: str, target: str = "", met: bool | None = None) -> None:
        rows.append({"part": part, "measure": what, "value": value, "target": target,
                     "mark": "" if met is None else ("met" if met else "missed")})

    c = parts.get("check", {})
    for key, label in (("logits_fp32", "CPU vs GPU logits, float32"),
                       ("logits_bf16", "CPU vs GPU logits, bf16 autocast")):
        if key in c:
            add("check", label + ": max |diff| / max |logit|", f"{c[key]['relative']:.2e}",
                f"<= {c[key]['tolerance']:g}", c[key]["ok"])
    if "resume" in c:
        r = c["resume"]
        add("check", f"exact resume ({r['stopped_at']} + {r['steps'] - r['stopped_at']} steps, {r['dtype']})",
            "equal weights" if r["equal"] else f"max |diff| {r['max_abs_diff']:.2e}", "equal", r["equal"])
    if "torchrun" in c:
        t = c["torchrun"]
        add("check", "torchrun, 2 processes vs 1", t.get("skipped") or t.get("error")
            or f"max relative loss diff {t['max_relative_loss_diff']:.1e}", "<= 1e-4", t.get("ok"))
    g = parts.get("lecture7", {})
    if "best_val_loss" in g:
        add("lecture7", "best val loss", f"{g['best_val_loss']:.4f} (step {g['best_step']:,}; "
            f"{g['steps']:,} of {g['max_steps']:,} steps)", f"<= {LECTURE7_TARGET}", g["met"])
        add("lecture7", "wall time of the run, evaluations included (s)", f"{g['run_wall_s']:.0f}")
        add("lecture7", "tokens/s", f"{g['tokens_per_s']:,.0f}")
    ladder_rows = parts.get("lecture9", {}).get("rows", [])
    measured = [r for r in ladder_rows if r.get("tokens_per_s")]
    for row in ladder_rows:
        if row.get("tokens_per_s"):
            last = row is measured[-1]
            mfu = f", MFU {row['mfu']:.1%}" if row.get("mfu") is not None else ""
            add("lecture9", f"{row['rung']} (batch {row['batch']})", f"{row['tokens_per_s']:,.0f} tok/s{mfu}",
                f"MFU >= {MFU_TARGET:.0%}" if last else "", parts["lecture9"]["met"] if last else None)
        else:
            add("lecture9", row["rung"], f"skipped: {row['skipped']}")
    m = parts.get("llama", {})
    if "logits_equal" in m:
        add("llama", "best val loss", f"{m['best_val_loss']:.4f} ({m['steps']} steps)")
        add("llama", "llama2.c export read back: weights, logits",
            f"{'equal' if m['weights_equal'] else 'differ'}, "
            + ("equal" if m["logits_equal"] else f"max |diff| {m['max_abs_diff']:.2e}"), "equal", m["ok"])
    return rows


def record_markdown(rec: dict) -> str:
    """``gpu_record.md``: provenance, the parts' wall times, the measured table and the ladder."""
    head = (f"# GPU record: {rec['device']}\n\n`{rec['command']}`\n\ngit {rec['git']}, torch {rec['torch']}, "
            f"CUDA {rec['cuda']}, Triton {rec['triton']}, Python {rec['python']}, {rec['finished_at']}"
            + (" (smoke run on the CPU: not a GPU record)" if rec["smoke"] else "") + ".\n\n")
    parts = ["| part | status | wall time | cap |", "|---|---|---:|---:|"]
    parts += [f"| {n} | {p['status']}{': ' + _cell(p['error']) if p.get('error') else ''} | "
              f"{p.get('wall_s', 0):.0f} s | {p.get('cap_s', 0):.0f} s |" for n, p in rec["parts"].items()]
    table = ["| part | measure | value | target | mark |", "|---|---|---|---|---|"]
    table += [f"| {r['part']} | {_cell(r['measure'])} | {_cell(r['value'])} | {r['target']} | {r['mark']} |"
              for r in rec["table"]]
    ladder = rec["parts"].get("lecture9", {}).get("table")
    total = sum(p.get("wall_s", 0) for p in rec["parts"].values())
    return (head + "\n".join(parts) + f"\n\nAll parts: {total:.0f} s (this command: {rec['wall_s']:.0f} s)."
            + "\n\n" + "\n".join(table) + "\n"
            + (f"\n## GPT-2 124M optimization ladder\n\n{ladder}\n" if ladder else ""))


def _cell(text: str, width: int = 200) -> str:
    """``text`` as one markdown table cell: its first line, ``|`` escaped, shortened."""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    line = line.replace("|", "\\|")
    return line if len(line) <= width else line[:width - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    args = parse(_parser(), sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args
    args.out, args.data_dir = Path(args.out).resolve(), Path(args.data_dir).resolve()
    if args.smoke:
        args.device = "cpu"
    os.environ["ZTH_DATA_DIR"] = str(args.data_dir)  # read the course's data from here only
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(args.data_dir / "tiktoken_cache"))
    if args.child:
        return run_part(args.child, args)
    if not args.data_dir.is_dir():
        return fail(PROG, f"--data-dir {args.data_dir} is not a folder")
    if not args.smoke:
        import torch

        if not (args.device.startswith("cuda") and torch.cuda.is_available()):
            return fail(PROG, f"no CUDA GPU for --device {args.device}; use --smoke to run on the CPU")
    selected = args.only or list(PARTS)
    selected = [p for p in PARTS if p in selected]
    caps = {name: part.smoke_cap_s if args.smoke else part.cap_s for name, part in CAPS.items()}
    for item in args.cap:
        name, _, seconds = item.partition("=")
        try:
            caps[name] = float(seconds) if name in caps and float(seconds) > 0 else None
        except ValueError:
            caps[name] = None
        if caps[name] is None:
            return fail(PROG, f"--cap {item!r}: expected PART=SECONDS with PART one of {', '.join(PARTS)}")
    if missing := _missing_data(args.data_dir, selected):
        return fail(PROG, f"{args.data_dir} lacks {', '.join(missing)} (zth data fetch --all, then copy)")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return fail(PROG, f"cannot create --out {args.out}: {e}")
    from zth.sysinfo import git_revision

    os.environ.setdefault("ZTH_GIT_REV", git_revision() or "unknown")  # one revision for every part
    command = shlex.join(["python", PROG, *(sys.argv[1:] if argv is None else argv)])
    rec_file = args.out / "gpu_record.json"
    previous = json.loads(rec_file.read_text()) if rec_file.is_file() and args.only else {}
    if previous.get("smoke") != args.smoke:  # never mix a smoke run into a GPU record
        previous = {}
    rec = {"smoke": args.smoke, **_environment(args.device, command),
           "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "parts": {k: v for k, v in previous.get("parts", {}).items() if k not in selected}}
    t0 = time.perf_counter()
    shutil.rmtree(args.out / "_scratch", ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the running part too (finally)
    try:
        for name in selected:
            rec["parts"][name] = _run_part(name, args, command, caps[name], rec["git"])
            _write(rec, args.out, t0)
    finally:
        shutil.rmtree(args.out / "_scratch", ignore_errors=True)
    print(record_markdown(_write(rec, args.out, t0)))
    return 0 if all(rec["parts"][n]["status"] == "ok" for n in selected) else 1


def _run_part(name: str, args: argparse.Namespace, command: str, cap: float, git: str) -> dict:
    """Run one part in its own process and return its entry in the record."""
    print(f"== {name}: {CAPS[name].what} (cap {cap:.0f} s)", flush=True)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ended, wall, tail = _run_child(name, args, command, cap)
    result_file = args.out / "_scratch" / f"{name}.json"
    result = json.loads(result_file.read_text()) if result_file.is_file() else {}
    if result.get("status") != "ok":
        result["error"] = result.get("error") or f"the part ended without a result ({ended})"
        result["status"] = "failed" if "exit" in ended else "out of time"
    if result.get("status") != "ok" or result.get("ok") is False:
        result["log_tail"] = tail  # what went wrong, where no log file comes back
    if result.get("run"):  # a part that was killed leaves its checkpoints
        _drop_checkpoints([args.out / result["run"]])
    result.update(wall_s=round(wall, 1), cap_s=cap, ended=ended, command=command, git=git, started_at=started)
    return result


def _write(rec: dict, out: Path, t0: float) -> dict:
    """Rewrite ``gpu_record.json`` and ``.md`` with what has been measured so far."""
    rec["parts"] = {name: rec["parts"][name] for name in PARTS if name in rec["parts"]}
    rec.update(finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
               wall_s=round(time.perf_counter() - t0, 1), table=record_rows(rec["parts"]))
    write_json(out / "gpu_record.json", rec)
    write_text_atomic(out / "gpu_record.md", record_markdown(rec))
    return rec


if __name__ == "__main__":
    sys.exit(main())
