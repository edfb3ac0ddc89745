"""benchmarks/gpu_record.py: every part's --smoke run on the CPU, its output's layout, and that the
chapters, the scoreboard and a rerun of one part read what it writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zth.data
import zth.gpt2.ladder as ladder
from zth.gpt2 import GPT2Config
from zth.runs import read_runs, split_metrics
from zth.scoreboard import Scoreboard

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_record.py"
NEEDED = ("shakespeare", "tinystories_train", "tinystories_valid")
# what the record must not need on a bare GPU machine: importing any of these fails in the smoke run
BLOCKED = ("graphviz", "hypothesis", "jupyter", "jupyter_book", "IPython", "nbformat", "myst_nb", "datasets")


def _data_dir() -> Path:
    mirror = os.environ.get("ZTH_DATA_DIR")
    if not mirror or any(not (Path(mirror) / zth.data.REGISTRY[n].filename).is_file() for n in NEEDED):
        pytest.skip("the course's data is not in ZTH_DATA_DIR; tests never download")
    if not (Path(mirror) / "tiktoken_cache").is_dir():
        pytest.skip("no tiktoken_cache folder beside the data")
    return Path(mirror)


def _record(out: Path, *args: str, blockers: Path | None = None) -> subprocess.CompletedProcess:
    """Run the record in a fresh process with nothing but --data-dir to find the data."""
    drop = ("ZTH_DATA_DIR", "TIKTOKEN_CACHE_DIR", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["ZTH_CACHE_DIR"] = str(out.parent / "empty-cache")  # no per-user cache to fall back on
    env["PYTHONPATH"] = os.pathsep.join([str(blockers)] if blockers else [])  # the script finds zth itself
    cmd = [sys.executable, str(SCRIPT), "--out", str(out), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=out.parent)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    data = _data_dir()
    tmp = tmp_path_factory.mktemp("record")
    blockers = tmp / "blockers"
    blockers.mkdir()
    for name in BLOCKED:
        (blockers / f"{name}.py").write_text(f"raise ImportError('the GPU record must not import {name}')\n")
    out = tmp / "out"
    return out, _record(out, "--smoke", "--data-dir", str(data), blockers=blockers)


def test_every_part_runs_and_writes_a_handful_of_files(smoke):
    out, proc = smoke
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    runs = {p.parent.name for p in out.glob("*/*/run.json")}
    assert len(runs) == 2 and all(r.startswith("smoke-") for r in runs)
    gpt_run, llama_run = (next(p.parent.name for p in out.glob(f"{f}/*/run.json")) for f in ("gpt", "llama"))
    slug = gpt_run.removeprefix("smoke-shakespeare-")
    assert files == sorted([
        "gpu_record.json", "gpu_record.md",
        f"gpt/{gpt_run}/metrics.jsonl", f"gpt/{gpt_run}/run.json",
        f"gpt2/throughput-smoke-{slug}.json", f"gpt2/throughput-smoke-{slug}.md",
        f"llama/{llama_run}/metrics.jsonl", f"llama/{llama_run}/run.json",
    ])  # eight files (what the GPU tool brings back at most), no checkpoints, at most two folders deep

    rec = json.loads((out / "gpu_record.json").read_text())
    assert rec["smoke"] and rec["git"] and rec["torch"] == torch.__version__ and "--smoke" in rec["command"]
    assert list(rec["parts"]) == ["check", "lecture7", "llama", "lecture9"]
    for name, part in rec["parts"].items():
        assert part["status"] == "ok" and part["wall_s"] <= part["cap_s"], (name, part)
        assert "log_tail" not in part and "error" not in part
    check = rec["parts"]["check"]
    assert check["ok"] and check["resume"]["equal"] and check["resume"]["repeat_equal"]
    assert check["logits_fp32"]["max_abs_diff"] == 0.0  # the CPU against itself
    assert 0 < check["logits_bf16"]["relative"] <= check["logits_bf16"]["tolerance"]
    assert "skipped" in check["torchrun"]
    lecture7 = rec["parts"]["lecture7"]
    assert lecture7["finished"] and lecture7["steps"] == lecture7["max_steps"] == 6
    llama = rec["parts"]["llama"]
    assert llama["weights_equal"] and llama["logits_equal"] and llama["max_abs_diff"] == 0.0
    measured = [r for r in rec["parts"]["lecture9"]["rows"] if r.get("tokens_per_s")]
    assert [r["rung"] for r in measured][0] == "fp32" and all(r["steps"] >= 1 for r in measured)
    assert {r["part"] for r in rec["table"]} == {"check", "lecture7", "llama", "lecture9"}
    md = (out / "gpu_record.md").read_text()
    assert "| lecture7 | best val loss |" in md and "## GPT-2 124M optimization ladder" in md


def test_the_chapters_and_the_scoreboard_read_the_record(smoke):
    out, _ = smoke
    # Chapter 7, "Full run": read_runs(results, "gpt"), the val series, wall_s, results.tokens_per_s
    (run,) = read_runs(out, family="gpt")
    steps, val = run.series("val_loss")
    assert steps == [0, 3, 6] and len(val) == 3 and run.series("train_loss")[1]
    assert run.info["wall_s"] > 0 and run.info["results"]["tokens_per_s"] > 0 and run.info["git_revision"]
    assert run.info["preset"] == "shakespeare" and run.device.startswith("CPU")
    assert "gpu_record.py" in run.info["command"]
    train, evals = split_metrics(run.metrics)
    assert train and evals
    (llama,) = read_runs(out, family="llama")
    assert llama.best("val_loss") is not None
    # Chapter 9, "The full run": the throughput file's fields and ladder_table of its rows
    (ladder_file,) = (out / "gpt2").glob("throughput-*.json")
    rec = json.loads(ladder_file.read_text())
    for key in ("device", "git", "batch", "seq_len", "peak_kind", "rows", "final"):
        assert key in rec
    assert rec["device"].startswith("CPU")  # the chapter shows GPU ladders only: a smoke run stays out
    assert "| fp32 |" in ladder.ladder_table(rec["rows"])
    # the scoreboard's GPU column
    board = Scoreboard.from_build(out / "no-build", out)
    assert {r.family for r in board.runs} == {"gpt", "llama"}
    assert f"gpt/{run.name}" in board.gpu_markdown()  # the Lecture 7 row shows the recorded run


def test_one_part_again_replaces_its_results_and_keeps_the_others(smoke, tmp_path):
    out, proc = smoke
    assert proc.returncode == 0
    again = tmp_path / "out"
    shutil.copytree(out, again)
    before = json.loads((again / "gpu_record.json").read_text())
    (run_json,) = again.glob("gpt/*/run.json")
    started = json.loads(run_json.read_text())["started_at"]
    rerun = _record(again, "--smoke", "--only", "lecture7", "--data-dir", os.environ["ZTH_DATA_DIR"])
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = json.loads((again / "gpu_record.json").read_text())
    assert after["parts"]["check"] == before["parts"]["check"]
    assert after["parts"]["lecture7"]["started_at"] >= before["parts"]["lecture7"]["started_at"]
    assert "--only lecture7" in after["parts"]["lecture7"]["command"]
    assert json.loads(run_json.read_text())["started_at"] >= started and len(read_runs(again, "gpt")) == 1


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    cases = [
        (["--smoke", "--data-dir", str(tmp_path / "nowhere")], "is not a folder"),
        (["--smoke", "--data-dir", str(empty)], "tinyshakespeare.txt"),
        (["--smoke", "--data-dir", str(empty), "--only", "lecture10"], "invalid choice"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--data-dir", str(empty)], "no CUDA GPU"))
    for args, message in cases:
        proc = _record(tmp_path / "out", *args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing written before the input was checked


def test_the_ladder_halves_the_batch_on_out_of_memory(monkeypatch):
    """A rung that does not fit is measured again at half the batch; rungs that save activation
    memory (bf16, flash) start again from the full batch, the others from the last batch that fit."""
    calls = []

    def fake_measure(config, settings, batch, seq_len, steps, warmup, device, shards=None, max_seconds=None):
        calls.append((settings, batch))
        if batch > (32 if settings.flash else 8):
            raise torch.cuda.OutOfMemoryError("fake")
        return {"tokens_per_s": 100.0 * batch, "step_ms": 1.0, "batch": batch, "steps": steps,
                "flops_per_token": 1.0, "loss": 1.0}

    monkeypatch.setattr(ladder, "measure", fake_measure)
    rows = ladder.speed_ladder(GPT2Config(), 64, 128, device="cpu", peak=1.0, shrink_on_oom=True)
    measured = {r["rung"]: r["batch"] for r in rows if r.get("tokens_per_s")}
    assert measured == {"fp32": 8, "+ flash attention": 32, "+ vocab 50,304": 32} | (
        {"+ bf16 autocast": 8} if "+ bf16 autocast" in measured else {})
    tried = [b for s, b in calls if s.padded_vocab]
    assert tried == [32]  # the vocab rung starts where flash attention fit
    assert [b for s, b in calls if not s.flash and not s.bf16] == [64, 32, 16, 8]
    # without shrinking, an out-of-memory rung is skipped with the reason
    rows = ladder.speed_ladder(GPT2Config(), 64, 128, device="cpu", peak=1.0)
    assert rows[0]["skipped"] == "out of memory at batch 64"
    # keep_going: a rung that raises is reported as failed, and the next rungs go on without it
    def broken_flash(config, settings, batch, *args, **kwargs):
        if settings.flash:
            raise RuntimeError("no kernel\nfor this")
        return fake_measure(config, settings, 8, *args, **kwargs)

    monkeypatch.setattr(ladder, "measure", broken_flash)
    with pytest.raises(RuntimeError):
        ladder.speed_ladder(GPT2Config(), 8, 128, device="cpu", peak=1.0)
    rows = {r["rung"]: r for r in ladder.speed_ladder(GPT2Config(), 8, 128, device="cpu", peak=1.0,
                                                       keep_going=True)}
    assert rows["+ flash attention"]["skipped"] == "failed: RuntimeError: no kernel"
    assert rows["+ vocab 50,304"]["tokens_per_s"] and not rows["+ vocab 50,304"]["settings"]["flash"]
    # a rung not begun by stop_at is skipped, and says why
    rows = ladder.speed_ladder(GPT2Config(), 8, 128, device="cpu", peak=1.0, stop_at=0.0)
    assert all(r["skipped"] for r in rows) and "out of time" in rows[0]["skipped"]
