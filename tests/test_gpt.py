"""zth.gpt: the lecture's Transformer, its training command, checkpoints and sampling."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn as nn
from torch.nn import functional as F

import zth.data
from zth.gpt import (
    GPT,
    BigramLanguageModel,
    CausalSelfAttention,
    CharTokenizer,
    GPTConfig,
    Head,
    MultiHeadAttention,
    count_params,
    load_gpt,
    preset,
    train_val_split,
)
from zth.gpt.model import Rotary, fuse_heads
from zth.gpt.sample import main as sample_main
from zth.gpt.train import main as train_main
from zth.gpt.train import train
from zth.runs import read_metrics
from zth.storage import CheckpointError, save_checkpoint
from zth.train import ConfigError, RandomWindows, apply_overrides, estimate_loss, train_many
from zth.train.checkpoint import load_checkpoint
from zth.train.data import get_batch

TEXT = "".join(f"{w} the {v} of {n}.\n" for w in ("First", "Second", "Third", "Fourth") for v in
               ("king", "queen", "duke", "fool") for n in ("York", "Kent", "Rome", "Verona", "Padua")) * 12
HAVE_SHAKESPEARE = zth.data.status().get("shakespeare") is not None
needs_shakespeare = pytest.mark.skipif(not HAVE_SHAKESPEARE, reason="tiny Shakespeare not present locally "
                                       "(set ZTH_DATA_DIR); tests never download")


def small(**kw) -> GPTConfig:
    base = dict(vocab_size=11, block_size=8, n_embd=16, n_head=4, n_layer=2, dropout=0.0)
    return GPTConfig(**{**base, **kw})


# ---------------------------------------------------------------- the model
def test_parameter_count_of_the_lecture_configuration():
    assert count_params(GPTConfig()) == 10_788_929
    assert count_params(GPTConfig(fused_heads=False)) == 10_788_929


@pytest.mark.parametrize("fused", [True, False])
def test_shapes_and_loss(fused):
    torch.manual_seed(0)
    model = GPT(small(fused_heads=fused))
    idx = torch.randint(11, (3, 8))
    logits, loss = model(idx)
    assert logits.shape == (3, 8, 11) and loss is None
    logits, loss = model(idx, idx)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(F.cross_entropy(logits.view(-1, 11), idx.view(-1)).item())
    # the N(0, 0.02) initialization makes the first predictions nearly uniform
    assert loss.item() == pytest.approx(math.log(11), abs=0.05)
    with pytest.raises(ValueError, match="longer than block_size"):
        model(torch.zeros(1, 9, dtype=torch.long))


@pytest.mark.parametrize("cfg", [small(fused_heads=True), small(fused_heads=False), small(rope=True),
                                 small(residual=False, layernorm=False, n_layer=1)])
def test_a_future_token_never_changes_an_earlier_output(cfg):
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    idx = torch.randint(11, (2, 8))
    base, _ = model(idx)
    for t in range(8):
        changed = idx.clone()
        changed[:, t] = (changed[:, t] + 1) % 11
        out, _ = model(changed)
        assert torch.equal(out[:, :t], base[:, :t]), f"position < {t} saw the change at {t}"
        assert not torch.allclose(out[:, t], base[:, t])


def test_head_is_the_lectures_attention():
    torch.manual_seed(0)
    head = Head(n_embd=16, head_size=4, block_size=8)
    x = torch.randn(2, 5, 16)
    q, k, v = head.query(x), head.key(x), head.value(x)
    mask = torch.ones(5, 5).tril().bool()
    wei = torch.softmax((q @ k.transpose(-2, -1) / 2.0).masked_fill(~mask, float("-inf")), -1)
    torch.testing.assert_close(head(x), wei @ v)
    torch.testing.assert_close(head(x), F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_batched_heads_equal_the_multi_head_module_and_torch_nn():
    torch.manual_seed(0)
    cfg = small()
    mha, fused = MultiHeadAttention(cfg), CausalSelfAttention(cfg)
    fused.load_heads(mha)
    x = torch.randn(3, 8, 16)
    torch.testing.assert_close(fused(x), mha(x))
    ref = nn.MultiheadAttention(16, 4, bias=False, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([fused.query.weight, fused.key.weight, fused.value.weight]))
        ref.out_proj.weight.copy_(fused.proj.weight)
    causal = torch.ones(8, 8).triu(1).bool()
    expected = ref(x, x, x, attn_mask=causal, need_weights=False)[0] + fused.proj.bias
    torch.testing.assert_close(fused(x), expected)


def test_fuse_heads_keeps_the_models_outputs():
    torch.manual_seed(0)
    model = GPT(small(fused_heads=False)).eval()
    idx = torch.randint(11, (2, 8))
    torch.testing.assert_close(fuse_heads(model).eval()(idx)[0], model(idx)[0])


def test_rotary_scores_depend_only_on_relative_position():
    rot = Rotary(head_size=8, block_size=16)
    q, k = torch.randn(8), torch.randn(8)

    def score(i, j):
        qs, ks = torch.zeros(1, 16, 1, 8), torch.zeros(1, 16, 1, 8)  # (B, T, nh, hs)
        qs[0, i, 0], ks[0, j, 0] = q, k
        return (rot(qs)[0, i, 0] @ rot(ks)[0, j, 0]).item()

    assert score(5, 2) == pytest.approx(score(12, 9), abs=1e-5)
    assert score(3, 3) == pytest.approx((q @ k).item(), abs=1e-5)  # zero offset: no rotation


def test_rotary_in_real_numbers_under_compile_equals_the_complex_product(monkeypatch):
    rot = Rotary(head_size=8, block_size=16)
    x = torch.randn(2, 16, 3, 8)
    eager = rot(x)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)  # the branch torch.compile traces
    torch.testing.assert_close(rot(x), eager, rtol=0, atol=1e-6)
    torch.testing.assert_close(rot(x.bfloat16()), eager.bfloat16(), rtol=0, atol=0.02)


def test_generate_length_and_context_cropping():
    torch.manual_seed(0)
    model = GPT(small())
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    out = model.generate(torch.zeros(2, 3, dtype=torch.long), max_new_tokens=20)
    assert out.shape == (2, 23)
    assert max(seen) == 8 and seen[:6] == [3, 4, 5, 6, 7, 8]
    greedy = model.generate(out[:, :5], 4, top_k=1)  # top-k 1 is the argmax
    for i in range(4):
        step = greedy[:, : 5 + i][:, -8:]
        assert torch.equal(greedy[:, 5 + i], model(step)[0][:, -1].argmax(-1))
    with pytest.raises(ValueError):
        model.generate(out, 1, temperature=0.0)


def test_generate_is_seeded():
    torch.manual_seed(0)
    model = BigramLanguageModel(11)
    a = model.generate(torch.zeros(1, 1, dtype=torch.long), 30, generator=torch.Generator().manual_seed(1))
    b = model.generate(torch.zeros(1, 1, dtype=torch.long), 30, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (1, 31)


def test_a_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = GPT(small(vocab_size=30, block_size=16, n_embd=32))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.randint(30, (4, 16))
    y = torch.randint(30, (4, 16))
    for _ in range(100):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


# ---------------------------------------------------------------- data
def test_tokenizer_round_trip_and_errors():
    tok = CharTokenizer.from_text("hello world")
    assert tok.vocab == " dehlorw" and tok.vocab_size == 8
    assert tok.decode(tok.encode("hello")) == "hello" and tok.encode("eh") == [2, 3]
    with pytest.raises(ValueError, match="'Z'"):
        tok.encode("Zed")


@needs_shakespeare
def test_shakespeare_vocabulary_and_split():
    text = zth.data.shakespeare()
    tok = CharTokenizer.from_text(text)
    assert len(text) == 1_115_394 and tok.vocab_size == 65
    train_data, val_data = train_val_split(torch.tensor(tok.encode(text)))
    assert len(train_data) == 1_003_854 and len(val_data) == 111_540


def test_batches_are_shifted_windows():
    data = torch.arange(100)
    x, y = get_batch(data, 5, 7, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 7)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)


def test_aligned_batches_start_at_record_boundaries():
    data = torch.arange(103)
    x, y = get_batch(data, 200, 10, torch.Generator().manual_seed(0), align=10)
    assert torch.all(x[:, 0] % 10 == 0) and x[:, 0].max() <= 92 and torch.equal(y, x + 1)
    assert set(x[:, 0].tolist()) == set(range(0, 100, 10))  # every record can be drawn


def test_estimate_loss_is_repeatable_and_leaves_rng_alone():
    torch.manual_seed(0)
    model = GPT(small(vocab_size=100, dropout=0.5))
    sources = {"train": RandomWindows(torch.arange(100).repeat(3), 4, 8, seed=1),
               "val": RandomWindows(torch.arange(100), 4, 8, seed=1)}
    state = torch.get_rng_state()
    a = estimate_loss(model, sources, 3)
    assert torch.equal(state, torch.get_rng_state())
    assert a == estimate_loss(model, sources, 3) and model.training and a.keys() == {"train", "val"}


# ---------------------------------------------------------------- configuration
def test_presets_take_overrides_and_stay_unchanged():
    cfg = apply_overrides(preset("book"), ["n_layer=6", "lr=1e-3", "compile=true", "dataset=names"])
    assert (cfg.model.n_layer, cfg.train.lr, cfg.train.compile, cfg.data.dataset) == (6, 1e-3, True, "names")
    assert preset("book").model.n_layer == 2  # presets are not modified
    with pytest.raises(ConfigError, match="train_fraction"):
        apply_overrides(preset("book"), ["train_fraction=1.5"])
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("gpt5")


def test_the_shakespeare_preset_is_the_lectures():
    cfg = preset("shakespeare")
    m, t = cfg.model, cfg.train
    shape = (t.batch_size, m.block_size, m.n_embd, m.n_head, m.n_layer, m.dropout)
    assert shape == (64, 256, 384, 6, 6, 0.2)
    assert (t.lr, t.lr_schedule, t.max_steps) == (3e-4, "constant", 5000)
    assert (t.eval_interval, t.eval_steps) == (500, 200)
    assert count_params(m) == 10_788_929


# ---------------------------------------------------------------- training, checkpoints, commands
def tiny(**kw):
    return apply_overrides(preset("tiny"), {"device": "cpu", "dropout": 0.1, **kw})


def test_resume_equals_an_uninterrupted_run(tmp_path):
    cfg = tiny(max_steps=24, eval_interval=5, log_interval=3, lr_schedule="cosine", warmup_steps=4)
    full = train(cfg, tmp_path / "full", text=TEXT, log=None)
    part = train(cfg, tmp_path / "split", text=TEXT, stop_after=11, log=None)
    assert part.interrupted and part.step == 11
    resumed = train(cfg, tmp_path / "split", text=TEXT, resume=True, log=None)
    assert resumed.step == full.step == 24 and not resumed.interrupted
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    strip = lambda rs: [{k: r[k] for k in r if k not in ("elapsed_s", "train_s", "tokens_per_s")} for r in rs]
    assert strip(read_metrics(tmp_path / "split" / "metrics.jsonl")) == strip(read_metrics(tmp_path / "full" /
                                                                                          "metrics.jsonl"))
    assert load_checkpoint(tmp_path / "full")["best_val_loss"] == full.best_val_loss
    with pytest.raises(CheckpointError, match="different model"):
        train(apply_overrides(cfg, ["n_layer=3"]), tmp_path / "split", text=TEXT, resume=True, log=None)
    with pytest.raises(FileExistsError):
        train(cfg, tmp_path / "full", text=TEXT, log=None)


def test_runs_side_by_side_equal_the_same_runs_one_after_the_other(tmp_path):
    jobs = [dict(cfg=tiny(max_steps=12, eval_interval=6, seed=seed), text=TEXT) for seed in (1, 2, 3)]
    jobs[2]["out"] = tmp_path / "third"
    parallel = train_many(train, jobs, workers=2)
    threads = torch.get_num_threads()
    serial = train_many(train, [{**job, "out": None} for job in jobs], workers=1)
    assert torch.get_num_threads() == threads  # one thread while training here, then as it was
    assert [r.step for r in parallel] == [12, 12, 12] and (tmp_path / "third" / "best.pt").is_file()
    for p, s in zip(parallel, serial, strict=True):
        assert p.final == s.final and p.config == s.config
        for k, v in s.model.state_dict().items():
            assert torch.equal(v, p.model.state_dict()[k]), k
    assert parallel[0].final != parallel[1].final  # the seeds differ, and so do the runs


def test_unsafe_and_corrupt_checkpoints_are_refused(tmp_path):
    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    torch.save({"format": "zth.train/1", "model": Boom()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "junk.pt").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    save_checkpoint(tmp_path / "other.pt", {"hello": torch.zeros(2)}, "zth.train/1")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a zth.train/1 checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="lacks"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    # a checkpoint whose weights do not fit its configuration
    train(tiny(max_steps=2, eval_interval=2), tmp_path / "run", text=TEXT, log=None)
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    ckpt["config"]["model"]["n_layer"] = 3
    save_checkpoint(tmp_path / "mismatch.pt", {k: v for k, v in ckpt.items() if k != "format"}, "zth.train/1")
    with pytest.raises(CheckpointError, match="does not match the model"):
        load_gpt(tmp_path / "mismatch.pt")
    model, tok = load_gpt(tmp_path / "run")
    logits, _ = model(torch.tensor([tok.encode("the king")]))
    assert logits.shape == (1, 8, tok.vocab_size) and not model.training


def _one_line_error(capsys, rc, match):
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and match in err, err


@needs_shakespeare
def test_training_and_sampling_commands_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    rc = train_main(["--preset", "tiny", "--out", str(out), "--device", "cpu", "--quiet",
                     "--set", "max_steps=20", "eval_interval=10"])
    assert rc == 0
    assert {p.name for p in out.iterdir()} >= {"metrics.jsonl", "run.json", "best.pt", "last.pt"}
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["results"]["step"] == 20
    assert run["command"].endswith("eval_interval=10") and run["preset"] == "tiny"
    assert {"device", "git_revision", "started_at", "wall_s", "config"} <= run.keys()
    evals = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 10, 20] and evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert {"train_loss", "val_loss", "tokens", "elapsed_s", "train_s"} <= evals[-1].keys()
    trains = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "train"]
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "tokens", "elapsed_s", "train_s"} <= trains[-1].keys()
    capsys.readouterr()
    assert sample_main([str(out), "--tokens", "50", "--prompt", "KING", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("KING") and len(text.rstrip("\n")) >= 50
    # resuming a finished run with more iterations continues it
    assert train_main(["--preset", "tiny", "--out", str(out), "--device", "cpu", "--quiet", "--resume",
                       "--set", "max_steps=30", "eval_interval=10"]) == 0
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "eval"] == [0, 10, 20, 30]


def test_commands_reject_bad_input_with_one_line_and_exit_code_2(tmp_path, capsys):
    _one_line_error(capsys, train_main(["--preset", "gpt5"]), "unknown preset")
    _one_line_error(capsys, train_main(["--set", "n_layer"]), "key=value")
    _one_line_error(capsys, train_main(["--set", "n_layer=two"]), "expects int")
    _one_line_error(capsys, train_main(["--bogus"]), "unrecognized arguments")
    _one_line_error(capsys, train_main(["--resume", "--out", str(tmp_path / "none")]), "nothing to resume")
    _one_line_error(capsys, train_main(["--set", "lr=inf"]), "finite")
    (tmp_path / "afile").write_text("x")
    _one_line_error(capsys, train_main(["--out", str(tmp_path / "afile")]), "is a file")
    _one_line_error(capsys, sample_main([str(tmp_path / "missing.pt")]), "no checkpoint")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    _one_line_error(capsys, sample_main([str(tmp_path / "bad.pt")]), "not a readable checkpoint")
    cfg = tiny(max_steps=2, eval_interval=2)
    train(cfg, tmp_path / "run", text=TEXT, log=None)
    rc = sample_main([str(tmp_path / "run"), "--prompt", "Zebra!"])
    _one_line_error(capsys, rc, "not in the vocabulary")
    for t in ("nan", "0", "-1", "inf"):
        _one_line_error(capsys, sample_main([str(tmp_path / "run"), "--temperature", t]), "temperature")
    _one_line_error(capsys, train_main(["--out", str(tmp_path / "run")]), "already holds a run")
    assert train_main(["--preset", "tiny", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"]["n_layer"] == 2 and printed["train"]["seq_len"] == 16
    assert printed["preset"] == "tiny"
