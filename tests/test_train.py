"""zth.train: the one training stack (config, optimizer, schedule, loop, checkpoints, commands, DDP)."""

from __future__ import annotations

import copy
import json
import math
import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from zth.gpt2 import GPT2, GPT2Config
from zth.gpt2.shards import write_shards
from zth.runs import read_metrics, split_metrics, time_to_loss
from zth.storage import CheckpointError, save_checkpoint
from zth.train import (
    ConfigError,
    RandomWindows,
    RunConfig,
    TokenStream,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    apply_overrides,
    cosine_lr,
    lr_at,
)
from zth.train.checkpoint import load_checkpoint
from zth.train.optim import configure_adamw, configure_optimizers, hidden_matrices
from zth.train.perf import mfu, peak_for_name
from zth.train.session import RunExists, check_out_dir
from zth.train.trainer import _amp_dtype

TINY = GPT2Config(block_size=16, vocab_size=64, n_layer=2, n_head=2, n_embd=32)
ROOT = Path(__file__).resolve().parents[1]
BASE = TrainConfig(total_batch_tokens=128, batch_size=8, seq_len=16, max_steps=6, lr=1e-2, min_lr=1e-3,
                   warmup_steps=2, eval_interval=3, eval_steps=2, log_interval=1, device="cpu")


def tokens(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, TINY.vocab_size, n).astype(np.uint16)


def make(tc: TrainConfig = BASE, model_cfg: GPT2Config = TINY, seed: int = 0, out=None, data_seed: int = 0):
    torch.manual_seed(seed)
    model = GPT2(model_cfg)
    train = TokenStream([tokens(4096, data_seed)], tc.batch_size, tc.seq_len)
    val = TokenStream([tokens(1024, 99)], tc.batch_size, tc.seq_len)
    return Trainer(model, RunConfig(model_cfg, tc), train, {"val": val}, out=out, log=None)


# ---------------------------------------------------------------- schedule and optimizer
def test_cosine_schedule():
    kw = dict(max_lr=6e-4, min_lr=6e-5, warmup_steps=10, max_steps=110)
    assert cosine_lr(0, **kw) == pytest.approx(6e-5)
    assert cosine_lr(9, **kw) == pytest.approx(6e-4) and cosine_lr(10, **kw) == pytest.approx(6e-4)
    assert cosine_lr(60, **kw) == pytest.approx((6e-4 + 6e-5) / 2)
    assert cosine_lr(110, **kw) == pytest.approx(6e-5) and cosine_lr(10_000, **kw) == pytest.approx(6e-5)
    lrs = [cosine_lr(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_lr_at_follows_the_config():
    cfg = replace(BASE, lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=110)
    assert lr_at(0, cfg) == pytest.approx(1e-4) and lr_at(60, cfg) == pytest.approx(5.5e-4)
    assert lr_at(110, cfg) == pytest.approx(1e-4)
    constant = replace(cfg, lr_schedule="constant")
    assert lr_at(0, constant) == pytest.approx(1e-4) and lr_at(60, constant) == lr_at(500, constant) == 1e-3
    assert lr_at(60, replace(cfg, decay_steps=60)) == pytest.approx(1e-4)
    linear = replace(cfg, lr_schedule="linear")
    assert lr_at(0, linear) == lr_at(0, cfg) and lr_at(10, linear) == pytest.approx(1e-3)
    assert lr_at(35, linear) == pytest.approx(1e-3 - 0.25 * 9e-4)
    assert lr_at(60, linear) == pytest.approx(5.5e-4)
    assert lr_at(110, linear) == pytest.approx(1e-4) and lr_at(200, linear) == pytest.approx(1e-4)


def test_weight_decay_only_on_2d_parameters():
    model = GPT2(TINY)
    opt = configure_adamw(list(model.parameters()), lr=1e-3, weight_decay=0.1)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == model.num_params()
    assert opt.defaults["fused"] is False  # fused only on CUDA


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest():
    model = GPT2(TINY)
    muon, adamw = configure_optimizers(model, replace(BASE, optimizer="muon"))
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    hidden = {id(p) for g in muon.param_groups for p in g["params"]}
    assert hidden == {id(p) for p in hidden_matrices(model)}
    assert id(model.transformer.wte.weight) not in hidden  # the (tied) embedding and head stay with AdamW
    assert all(p.dim() == 2 for g in muon.param_groups for p in g["params"])
    everything = hidden | {id(p) for g in adamw.param_groups for p in g["params"]}
    assert everything == {id(p) for p in model.parameters()}
    t = make(replace(BASE, optimizer="muon", muon_lr=0.02))
    before = [p.detach().clone() for p in t.raw_model.parameters()]
    rec = t.train_step()
    assert math.isfinite(rec["loss"]) and rec["lr"] == pytest.approx(BASE.lr / BASE.warmup_steps)
    assert muon.param_groups[0]["peak_lr"] == 0.02
    assert all(not torch.equal(a, b) for a, b in zip(before, t.raw_model.parameters(), strict=True))


def test_one_step_equals_hand_written_adamw():
    cfg = replace(BASE, grad_clip=0.5, weight_decay=0.1)
    t = make(cfg)
    ref = copy.deepcopy(t.raw_model)
    x, y = TokenStream([tokens(4096)], 8, 16).next_batch()
    _, loss = ref(x, y)
    loss.backward()
    params = list(ref.parameters())
    norm = torch.sqrt(sum((p.grad**2).sum() for p in params))
    scale = min(1.0, cfg.grad_clip / (norm.item() + 1e-6))
    lr, (b1, b2), eps = cfg.lr / cfg.warmup_steps, (cfg.beta1, cfg.beta2), 1e-8
    expected = []
    for p in params:
        g = p.grad * scale
        m, v = (1 - b1) * g, (1 - b2) * g * g
        update = lr * (m / (1 - b1)) / ((v / (1 - b2)).sqrt() + eps)
        decay = cfg.weight_decay if p.dim() == 2 else 0.0
        expected.append(p.detach() * (1 - lr * decay) - update)
    rec = t.train_step()
    assert rec["loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert rec["grad_norm"] == pytest.approx(norm.item(), rel=1e-5) and rec["lr"] == pytest.approx(lr)
    for p, e in zip(t.raw_model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)


def test_accumulation_equals_one_big_batch():
    big = make(replace(BASE, total_batch_tokens=512, batch_size=32))
    small = make(replace(BASE, total_batch_tokens=512, batch_size=8))
    assert (big.grad_accum_steps, small.grad_accum_steps) == (1, 4)
    for _ in range(3):
        a, b = big.train_step(), small.train_step()
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    for p, q in zip(big.raw_model.parameters(), small.raw_model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="multiple"):
        make(replace(BASE, total_batch_tokens=100))


def test_autocast_follows_the_device():
    assert _amp_dtype("auto", "cpu") is None and _amp_dtype("float32", "cuda") is None
    assert _amp_dtype("bfloat16", "cpu") is torch.bfloat16 and _amp_dtype("float16", "cuda") is torch.float16


def test_mfu_only_for_known_devices():
    assert peak_for_name("NVIDIA H100 80GB HBM3") == 989.4e12
    assert peak_for_name("NVIDIA H100 PCIe") == 756e12 and peak_for_name("NVIDIA H200") == 989.4e12
    assert peak_for_name("NVIDIA A100-SXM4-80GB", "tf32") == 156e12
    assert peak_for_name("Tesla T4", "fp16") == 65e12 and peak_for_name("Tesla T4", "bf16") is None
    assert peak_for_name("NVIDIA GeForce RTX 4090") == 165.2e12
    assert peak_for_name("Some Future GPU 9000") is None
    assert mfu(1e9, 1e3, None) is None and mfu(1e9, 1e3, 1e13) == pytest.approx(0.1)
    rec = make().train_step()  # CPU: no datasheet peak, so no MFU at all (never a guess)
    assert "mfu" not in rec


# ---------------------------------------------------------------- configuration
def test_overrides_parse_by_field_type_across_model_train_and_data():
    cfg = RunConfig(TINY, BASE)
    new = apply_overrides(cfg, ["n_layer=3", "lr=1e-3", "compile=true", "lr_schedule=constant",
                                "fused_adamw=false"])
    assert (new.model.n_layer, new.train.lr, new.train.compile) == (3, 1e-3, True)
    assert new.train.lr_schedule == "constant"
    assert new.train.fused_adamw is False and cfg.model.n_layer == 2  # the original is untouched
    for bad, match in [(["n_layer=six"], "expects int"), (["nope=1"], "unknown config key"),
                       (["n_layer"], "key=value"), (["compile=maybe"], "true or false"),
                       (["n_head=5"], "divisible"), (["lr_schedule=exponential"], "lr_schedule"),
                       (["lr=inf"], "finite"), (["lr=nan"], "finite"), (["lr=-1"], "positive"),
                       (["optimizer=sgd"], "optimizer")]:
        with pytest.raises(ConfigError, match=match):
            apply_overrides(cfg, bad)
    with pytest.raises(ConfigError, match="finite"):
        TrainConfig(lr=float("inf"))


# ---------------------------------------------------------------- the loop, checkpoints
def test_resume_equals_uninterrupted_bit_for_bit(tmp_path):
    dropout = replace(TINY, dropout=0.1)  # so the restored RNG state matters
    cfg = replace(BASE, checkpoint_interval=3)
    full = make(cfg, dropout, out=tmp_path / "a").train()
    assert (tmp_path / "a" / "ckpt_000003.pt").is_file() and (tmp_path / "a" / "ckpt_000006.pt").is_file()
    part = make(cfg, dropout, out=tmp_path / "b").train(stop_after=4)
    assert part.interrupted and part.step == 4
    b = make(cfg, dropout, seed=123, out=tmp_path / "b")  # another initialization: everything is restored
    resumed = b.train(resume=True)
    assert resumed.step == 6 and not resumed.interrupted
    for p, q in zip(full.model.parameters(), b.raw_model.parameters(), strict=True):
        assert torch.equal(p, q)
    clocks = ("elapsed_s", "train_s", "tokens_per_s")
    strip = lambda rs: [{k: v for k, v in r.items() if k not in clocks} for r in rs]
    assert strip(read_metrics(tmp_path / "a" / "metrics.jsonl")) == strip(read_metrics(tmp_path / "b" /
                                                                                      "metrics.jsonl"))
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["status"] == "finished" and run["sessions"][0]["status"] == "interrupted"
    assert run["results"]["step"] == 6 and run["config"]["model"]["dropout"] == 0.1
    with pytest.raises(CheckpointError, match="different model"):
        make(cfg, replace(dropout, n_embd=16), out=tmp_path / "b").train(resume=True)


def test_train_s_counts_the_steps_own_time_and_survives_a_resume(tmp_path):
    full = make(replace(BASE, max_steps=6), out=tmp_path / "a").train()
    trains, evals = split_metrics(full.metrics)
    assert 0 < full.train_s == trains[-1]["train_s"] < full.elapsed_s  # evaluations are left out
    for a, b in zip([{"train_s": 0.0}] + trains, trains):  # each step adds its own duration
        assert math.isclose(b["train_s"] - a["train_s"], BASE.total_batch_tokens / b["tokens_per_s"])
    at_step = {0: 0.0, **{r["step"]: r["train_s"] for r in trains}}
    assert [e["train_s"] for e in evals] == [at_step[e["step"]] for e in evals]
    part = make(replace(BASE, max_steps=6), out=tmp_path / "b").train(stop_after=4)
    resumed = make(replace(BASE, max_steps=6), out=tmp_path / "b").train(resume=True)
    clock = [r["train_s"] for r in split_metrics(read_metrics(tmp_path / "b" / "metrics.jsonl"))[0]]
    assert len(clock) == 6 and clock[3] == part.train_s  # the resumed session starts from step 4's clock
    assert clock[3] < clock[4] < clock[5] == resumed.train_s


def test_target_loss_stops_at_the_first_evaluation_that_reaches_it():
    tc = replace(BASE, max_steps=8, eval_interval=1)
    evals = split_metrics(make(tc).train().metrics)[1]
    target = min(e["val_loss"] for e in evals[1:-1])
    first = next(e for e in evals if e["val_loss"] <= target)
    assert 0 < first["step"] < 7
    stopped = make(replace(tc, target_loss=target)).train()
    assert stopped.step == first["step"] and stopped.final["val"] == first["val_loss"]
    assert time_to_loss(stopped.metrics, target) == (stopped.train_s, first["step"])
    assert time_to_loss(stopped.metrics, target / 2) is None
    with pytest.raises(ConfigError, match="target_loss"):
        TrainConfig(target_loss=-1.0)


def test_best_checkpoint_keeps_the_lowest_val_loss(tmp_path):
    t = make(out=tmp_path)
    for step, loss in enumerate([3.0, 2.0, 2.5, 1.5, 1.7, float("nan")]):
        t.step = step
        better = t.improved(loss)
        assert better == (step in (0, 1, 3))
    assert (t.best_val, t.best_step) == (1.5, 3)
    assert not t.improved(None)
    result = make(replace(BASE, eval_interval=1), out=tmp_path / "run").train()
    evals = [r for r in result.metrics if r["kind"] == "eval"]
    best = min(evals, key=lambda r: r["val_loss"])
    ckpt = load_checkpoint(tmp_path / "run")  # a run folder means its best.pt
    assert ckpt["step"] == best["step"] == result.best_step and ckpt["best_val_loss"] == best["val_loss"]


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tmp_path):
    t = make(replace(BASE, lr=1e6, min_lr=0.0, warmup_steps=0, grad_clip=0.0, eval_interval=1), out=tmp_path)
    with pytest.raises(TrainingDiverged, match="became"):
        t.train()
    good = load_checkpoint(tmp_path / "last.pt")
    assert good["step"] == t.step and all(torch.isfinite(v).all() for v in good["model"].values())
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "diverged"


def test_bad_checkpoints(tmp_path):
    t = make(out=tmp_path / "run")
    t.train()
    other = make(replace(BASE), replace(TINY, n_embd=16))
    with pytest.raises(CheckpointError, match="different model"):
        other.load(tmp_path / "run" / "last.pt")
    with pytest.raises(CheckpointError, match="model only"):
        t.load(tmp_path / "run" / "best.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a zth.train/1"):
        load_checkpoint(tmp_path / "foreign.pt")
    for old in ("zth.gpt/1", "zth.checkpoint/1"):  # zth's earlier formats: said so, never misread
        save_checkpoint(tmp_path / "old.pt", {"model": {}}, old)
        with pytest.raises(CheckpointError, match="earlier format"):
            load_checkpoint(tmp_path / "old.pt")


def test_output_folders_are_checked_before_anything_is_written(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_out_dir(tmp_path / "file", False)
    with pytest.raises(ConfigError, match="nothing to resume"):
        check_out_dir(tmp_path / "empty", True)
    with pytest.raises(ConfigError, match="needs the run's output folder"):
        check_out_dir(None, True)
    make(out=tmp_path / "run").train()
    with pytest.raises(RunExists, match="already holds a run"):
        make(out=tmp_path / "run").train()
    check_out_dir(tmp_path / "run", True)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        with pytest.raises(ConfigError, match="cannot write"):
            check_out_dir(ro / "run", False)


def test_random_windows_are_seeded_resettable_and_resumable():
    data = torch.arange(1000)
    a = RandomWindows(data, 4, 8, seed=3)
    x1, y1 = a.next_batch()
    assert x1.shape == y1.shape == (4, 8) and torch.equal(y1, x1 + 1)
    state = a.state_dict()
    x2, _ = a.next_batch()
    a.load_state_dict(state)
    assert torch.equal(a.next_batch()[0], x2)
    a.reset()
    assert torch.equal(a.next_batch()[0], x1)
    ranks = [RandomWindows(data, 2, 8, seed=3, rank=r, world_size=2).next_batch()[0] for r in (0, 1)]
    assert torch.equal(torch.cat(ranks), x1)  # two ranks of 2 read one batch of 4 between them


# ---------------------------------------------------------------- DDP under torchrun
def _train_args(data: Path, out: Path, eval_steps: int) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--device", "cpu", "--quiet", "--set", "hellaswag=off",
            "n_layer=2", "n_head=2", "n_embd=32", "vocab_size=64", "block_size=16", "seq_len=16",
            "batch_size=2",
            "total_batch_tokens=128", "max_steps=4", "warmup_steps=2", "eval_interval=2",
            f"eval_steps={eval_steps}", "log_interval=1"]


@pytest.mark.slow  # two fresh Python processes importing torch: ~10 s on an idle 2-core machine
def test_torchrun_two_processes_equal_one_process(tmp_path):
    write_shards([tokens(3000, 1)], tmp_path / "data", "rand", shard_tokens=2000, val_tokens=500)
    from zth.gpt2.train import main

    # one process: 4 accumulation steps, 4 validation batches; two: 2 + 2 and 2 + 2 (per rank)
    assert main(_train_args(tmp_path / "data", tmp_path / "one", 4)) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "zth.gpt2.train", *_train_args(tmp_path / "data", tmp_path / "two", 2)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    one = read_metrics(tmp_path / "one" / "metrics.jsonl")
    two = read_metrics(tmp_path / "two" / "metrics.jsonl")
    assert [r["step"] for r in one] == [r["step"] for r in two]
    for r1, r2 in zip(one, two, strict=True):
        for key in ("loss", "val_loss", "grad_norm"):
            if key in r1:
                assert math.isclose(r1[key], r2[key], rel_tol=1e-5), (key, r1, r2)
    assert json.loads((tmp_path / "two" / "run.json").read_text())["world_size"] == 2
