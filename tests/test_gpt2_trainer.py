"""The training loop: optimizer step, accumulation, schedule, resume, DDP (torchrun, gloo)."""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from zth.gpt2 import GPT2, GPT2Config, TrainConfig, Trainer
from zth.gpt2.optim import configure_adamw, cosine_lr
from zth.gpt2.shards import ShardLoader, write_shards
from zth.runs import read_metrics
from zth.storage import CheckpointError

TINY = GPT2Config(block_size=16, vocab_size=64, n_layer=2, n_head=2, n_embd=32)
ROOT = Path(__file__).resolve().parents[1]


def tokens(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, TINY.vocab_size, n).astype(np.uint16)


def make(cfg: TrainConfig, model_cfg: GPT2Config = TINY, seed: int = 0, data_seed: int = 0):
    torch.manual_seed(seed)
    model = GPT2(model_cfg)
    train = ShardLoader([tokens(4096, data_seed)], cfg.micro_batch, cfg.seq_len)
    val = ShardLoader([tokens(1024, 99)], cfg.micro_batch, cfg.seq_len)
    return Trainer(model, train, cfg, val_data=val, dist=None, log=lambda s: None)


BASE = TrainConfig(total_batch_tokens=128, micro_batch=8, seq_len=16, max_steps=6, max_lr=1e-2, min_lr=1e-3,
                   warmup_steps=2, eval_interval=3, eval_steps=2, checkpoint_interval=3, print_interval=0,
                   device="cpu")


def test_cosine_schedule():
    kw = dict(max_lr=6e-4, min_lr=6e-5, warmup_steps=10, max_steps=110)
    assert cosine_lr(0, **kw) == pytest.approx(6e-5)
    assert cosine_lr(9, **kw) == pytest.approx(6e-4)
    assert cosine_lr(10, **kw) == pytest.approx(6e-4)
    assert cosine_lr(60, **kw) == pytest.approx((6e-4 + 6e-5) / 2)
    assert cosine_lr(110, **kw) == pytest.approx(6e-5)
    assert cosine_lr(10_000, **kw) == pytest.approx(6e-5)
    lrs = [cosine_lr(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_weight_decay_only_on_2d_parameters():
    model = GPT2(TINY)
    opt = configure_adamw(model, lr=1e-3, weight_decay=0.1)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    n = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n == model.num_params()  # every parameter once, the tied embedding included
    assert opt.defaults["fused"] is False  # fused only on CUDA


def test_one_step_equals_hand_written_adamw():
    cfg = replace(BASE, total_batch_tokens=128, micro_batch=8, grad_clip=0.5, weight_decay=0.1)
    t = make(cfg)
    ref = copy.deepcopy(t.raw_model)
    x, y = ShardLoader([tokens(4096)], 8, 16).next_batch()
    _, loss = ref(x, y)
    loss.backward()
    params = list(ref.parameters())
    norm = torch.sqrt(sum((p.grad**2).sum() for p in params))
    scale = min(1.0, cfg.grad_clip / (norm.item() + 1e-6))
    lr, (b1, b2), eps = cfg.max_lr / cfg.warmup_steps, (cfg.beta1, cfg.beta2), 1e-8
    expected = []
    for p in params:
        g = p.grad * scale
        m, v = (1 - b1) * g, (1 - b2) * g * g
        update = lr * (m / (1 - b1)) / ((v / (1 - b2)).sqrt() + eps)
        decay = cfg.weight_decay if p.dim() == 2 else 0.0
        expected.append(p.detach() * (1 - lr * decay) - update)
    rec = t.train_step()
    assert rec["loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert rec["grad_norm"] == pytest.approx(norm.item(), rel=1e-5)
    assert rec["lr"] == pytest.approx(lr)
    for p, e in zip(t.raw_model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)


def test_accumulation_equals_one_big_batch():
    big = make(replace(BASE, total_batch_tokens=512, micro_batch=32))
    small = make(replace(BASE, total_batch_tokens=512, micro_batch=8))
    assert (big.grad_accum_steps, small.grad_accum_steps) == (1, 4)
    for _ in range(3):
        a, b = big.train_step(), small.train_step()
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    for p, q in zip(big.raw_model.parameters(), small.raw_model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_total_batch_must_divide():
    with pytest.raises(ValueError, match="multiple"):
        make(replace(BASE, total_batch_tokens=100))


def test_resume_equals_uninterrupted(tmp_path):
    dropout = replace(TINY, dropout=0.1)  # so the restored RNG state matters
    a = make(replace(BASE, out_dir=str(tmp_path / "a")), dropout)
    full = [r for r in a.train() if "loss" in r]
    assert (tmp_path / "a" / "ckpt_000003.pt").is_file() and (tmp_path / "a" / "ckpt_000006.pt").is_file()
    b = make(replace(BASE, out_dir=str(tmp_path / "b")), dropout, seed=123)  # other init: all is restored
    b.train(resume=tmp_path / "a" / "ckpt_000003.pt")
    resumed = [r for r in b.history if "loss" in r]
    assert [r["step"] for r in resumed] == [4, 5, 6]
    assert [r["loss"] for r in resumed] == [r["loss"] for r in full[3:]]  # bit for bit
    for p, q in zip(a.raw_model.parameters(), b.raw_model.parameters(), strict=True):
        assert torch.equal(p, q)
    # a run that crashed after step 4 restarts from step 3 and its log loses the stale records
    log = read_metrics(tmp_path / "a" / "metrics.jsonl")
    assert log[0]["step"] == 0 and "val_loss" in log[0] and log[-1]["step"] == 6
    c = make(replace(BASE, out_dir=str(tmp_path / "a"), max_steps=4), dropout)
    (tmp_path / "a" / "ckpt_000006.pt").unlink()
    c.train(resume=True)
    steps = [r["step"] for r in read_metrics(tmp_path / "a" / "metrics.jsonl") if "loss" in r]
    assert steps == [1, 2, 3, 4]


def test_checkpoint_interval_minus_one_writes_none(tmp_path):
    t = make(replace(BASE, max_steps=2, checkpoint_interval=-1, out_dir=str(tmp_path)))
    t.train()
    assert not list(tmp_path.glob("ckpt_*.pt"))
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl") if "loss" in r] == [1, 2]


def test_bad_checkpoints(tmp_path):
    t = make(replace(BASE, out_dir=str(tmp_path)))
    path = t.save_checkpoint()
    other = make(BASE, replace(TINY, n_embd=16))
    with pytest.raises(CheckpointError, match="does not match"):
        other.load_checkpoint(path)
    bad = tmp_path / "ckpt_000009.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        t.load_checkpoint(bad)
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a zth"):
        t.load_checkpoint(tmp_path / "foreign.pt")


def _train_args(data: Path, out: Path, eval_steps: int) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--device", "cpu", "--hellaswag", "off",
            "--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--vocab-size", "64", "--block-size", "16",
            "--seq-len", "16", "--micro-batch", "2", "--total-batch-tokens", "128", "--max-steps", "4",
            "--warmup-steps", "2", "--eval-interval", "2", "--eval-steps", str(eval_steps),
            "--print-interval", "0"]


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
