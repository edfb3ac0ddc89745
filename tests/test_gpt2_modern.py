"""Chapter 11's switches on GPT-2 (rotary, RMSNorm, QK-norm, ReLU², SwiGLU, untied head, zero-init,
soft-capping), Muon's parameter split, the character-level front-end and the command line."""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.nn import functional as F

import zth.data
from zth.gpt.model import Rotary
from zth.gpt2 import GPT2, GPT2Config
from zth.gpt2.chars import char_config, train_chars
from zth.gpt2.model import swiglu_width
from zth.gpt2.shards import write_shards
from zth.train import TrainConfig, train_many
from zth.train.optim import configure_optimizers

SMALL = GPT2Config(block_size=16, vocab_size=50, n_layer=2, n_head=4, n_embd=32)
ALL_ON = dict(rope=True, rmsnorm=True, qk_norm=True, mlp="relu2", untied_head=True, zero_init=True,
              softcap=5.0)


def idx(seed: int = 1, b: int = 3, t: int = 16) -> torch.Tensor:
    return torch.randint(0, SMALL.vocab_size, (b, t), generator=torch.Generator().manual_seed(seed))


def model(seed: int = 0, **switches) -> GPT2:
    torch.manual_seed(seed)
    return GPT2(replace(SMALL, **switches)).eval()


def perturb(m: nn.Module, scale: float = 0.05, seed: int = 7) -> nn.Module:
    """Every parameter moved off its initial value (zero biases, unit gains), deterministically."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return m


# -- Lecture 9's GPT-2 as it was before the switches (a frozen copy of zth/gpt2/model.py at 327e97e) --
class _L9Attention(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.flash, self.dropout = config.flash, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.c_proj.RESIDUAL_SCALE_INIT = True
        self.resid_dropout = nn.Dropout(config.dropout)
        if not self.flash:
            mask = torch.tril(torch.ones(config.block_size, config.block_size, dtype=torch.bool))
            self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        p = self.dropout if self.training else 0.0
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(dim=-1)
            y = F.dropout(att, p) @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class _L9MLP(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.c_proj.RESIDUAL_SCALE_INIT = True
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class _L9Block(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = _L9Attention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = _L9MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _L9GPT2(nn.Module):
    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([_L9Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            std = 0.02
            if getattr(module, "RESIDUAL_SCALE_INIT", False):
                std *= (2 * self.config.n_layer) ** -0.5
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1),
                                   ignore_index=-1)
        return logits, loss


@pytest.mark.parametrize("flash", [True, False])
def test_all_switches_off_is_the_lecture_9_model_bit_for_bit(flash):
    cfg = replace(SMALL, flash=flash)
    assert GPT2Config().modern_switches() == [] and cfg.modern_switches() == []
    torch.manual_seed(0)
    ours = GPT2(cfg).eval()
    torch.manual_seed(0)
    before = _L9GPT2(cfg).eval()
    a, b = ours.state_dict(), before.state_dict()
    assert list(a) == list(b)  # same names, same order: the same initialization draws
    assert all(torch.equal(a[k], b[k]) for k in a)
    perturb(ours), perturb(before)
    x, y = idx(), idx(2)
    (la, loss_a), (lb, loss_b) = ours(x, y), before(x, y)
    assert torch.equal(la, lb) and torch.equal(loss_a, loss_b)
    assert ours.num_params() == sum(p.numel() for p in before.parameters())


def test_every_switch_keeps_the_output_shape_and_the_loss_finite():
    for switches in [dict(rope=True), dict(rmsnorm=True), dict(qk_norm=True), dict(mlp="relu"),
                     dict(mlp="relu2"), dict(mlp="swiglu"), dict(untied_head=True), dict(zero_init=True),
                     dict(softcap=3.0), ALL_ON]:
        m = model(**switches)
        logits, loss = m(idx(), idx(2))
        assert logits.shape == (3, 16, SMALL.vocab_size) and math.isfinite(loss.item()), switches
        assert m.config.modern_switches(), switches


def test_bad_switch_values():
    with pytest.raises(ValueError, match="mlp"):
        GPT2Config(mlp="gelu2")
    with pytest.raises(ValueError, match="softcap"):
        GPT2Config(softcap=-1.0)
    with pytest.raises(ValueError, match="even head size"):
        GPT2Config(n_embd=30, n_head=2, rope=True)


# -- rotary position embeddings -----------------------------------------------------------------------
def test_rotary_is_the_identity_at_position_0_and_scores_depend_on_distance_only():
    rot = Rotary(8, 16)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 3, 8, generator=g)  # (B, T=1, nh, hs)
    assert torch.equal(rot(x), x)
    q, k = torch.randn(8, generator=g), torch.randn(8, generator=g)
    rq, rk = rot(q.expand(1, 16, 1, 8))[0, :, 0], rot(k.expand(1, 16, 1, 8))[0, :, 0]  # (T, hs)
    for m, n, s in [(3, 1, 5), (9, 2, 4), (7, 7, 8)]:
        torch.testing.assert_close(rq[m] @ rk[n], rq[m + s] @ rk[n + s], atol=1e-5, rtol=0)
    assert not torch.allclose(rq[3] @ rk[1], rq[4] @ rk[1])  # but on the distance it does


def test_rope_replaces_the_position_table():
    plain, rope = model(), model(rope=True)
    assert "transformer.wpe.weight" not in rope.state_dict()
    assert plain.num_params() - rope.num_params() == SMALL.block_size * SMALL.n_embd
    assert rope.num_params(non_embedding=True) == rope.num_params()
    attn = rope.transformer.h[0].attn
    assert isinstance(attn.rotary, Rotary) and model().transformer.h[0].attn.rotary is None
    # the attention of one head at position 0 does not depend on the rotation (identity there)
    x = torch.randn(1, 1, SMALL.n_embd, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        attn_plain = model(rope=False).transformer.h[0].attn
        attn_plain.load_state_dict(attn.state_dict())
        torch.testing.assert_close(attn(x), attn_plain(x), atol=0, rtol=0)


@pytest.mark.parametrize("switches", [dict(rope=True), dict(qk_norm=True), dict(rope=True, qk_norm=True)])
def test_explicit_softmax_and_flash_attention_agree_with_switches(switches):
    flash = perturb(model(**switches))
    explicit = model(flash=False, **switches)
    explicit.load_state_dict(flash.state_dict())
    torch.testing.assert_close(flash(idx())[0], explicit(idx())[0], atol=1e-5, rtol=1e-5)


# -- norms ----------------------------------------------------------------------------------------------
def test_rmsnorm_replaces_layernorm_and_matches_its_formula():
    m = perturb(model(rmsnorm=True))
    norms = [m.transformer.ln_f] + [b.ln_1 for b in m.transformer.h] + [b.ln_2 for b in m.transformer.h]
    assert all(isinstance(n, nn.RMSNorm) for n in norms)
    assert not any(isinstance(mod, nn.LayerNorm) for mod in m.modules())
    x = torch.randn(4, 7, SMALL.n_embd, generator=torch.Generator().manual_seed(0)) * 3 + 1
    ln = m.transformer.ln_f
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + SMALL.layer_norm_epsilon) * ln.weight
    torch.testing.assert_close(ln(x), expected)
    assert model().num_params() - m.num_params() == (2 * SMALL.n_layer + 1) * SMALL.n_embd  # no biases


@pytest.mark.parametrize("switches", [dict(qk_norm=True), ALL_ON])
@pytest.mark.parametrize("flash", [True, False])
def test_qk_norm_leaves_attention_causal(switches, flash):
    m = perturb(model(flash=flash, **switches), scale=0.3)
    x = idx(t=12)
    base = m(x)[0]
    for t in (0, 5, 11):
        changed = x.clone()
        changed[:, t:] = (changed[:, t:] + 1) % SMALL.vocab_size  # change position t and everything after
        out = m(changed)[0]
        assert torch.equal(out[:, :t], base[:, :t])  # no earlier output moves
        assert not torch.allclose(out[:, t], base[:, t])


def test_qk_norm_normalises_each_heads_queries_and_keys():
    m = perturb(model(qk_norm=True))
    attn = m.transformer.h[0].attn
    hs = SMALL.n_embd // SMALL.n_head
    assert attn.q_norm.weight.shape == attn.k_norm.weight.shape == (hs,)
    x = torch.randn(2, 5, SMALL.n_embd, generator=torch.Generator().manual_seed(1))
    q, k, v = attn.c_attn(x).split(SMALL.n_embd, dim=2)
    q, k, v = (t.view(2, 5, SMALL.n_head, hs).transpose(1, 2) for t in (q, k, v))
    q = q * torch.rsqrt(q.pow(2).mean(-1, keepdim=True) + SMALL.layer_norm_epsilon) * attn.q_norm.weight
    k = k * torch.rsqrt(k.pow(2).mean(-1, keepdim=True) + SMALL.layer_norm_epsilon) * attn.k_norm.weight
    att = (q @ k.transpose(-2, -1) / math.sqrt(hs)).masked_fill(~torch.ones(5, 5, dtype=torch.bool).tril(),
                                                                 float("-inf")).softmax(-1)
    expected = attn.c_proj((att @ v).transpose(1, 2).reshape(2, 5, SMALL.n_embd))
    torch.testing.assert_close(attn(x), expected, atol=1e-5, rtol=1e-5)


# -- MLPs -------------------------------------------------------------------------------------------------
def test_relu_relu2_and_swiglu_match_their_formulas():
    x = torch.randn(2, 5, SMALL.n_embd, generator=torch.Generator().manual_seed(0))
    for kind, power in (("relu", 1), ("relu2", 2)):
        mlp = perturb(model(mlp=kind)).transformer.h[0].mlp
        w1, b1, w2, b2 = mlp.c_fc.weight, mlp.c_fc.bias, mlp.c_proj.weight, mlp.c_proj.bias
        assert w1.shape == (4 * SMALL.n_embd, SMALL.n_embd)
        torch.testing.assert_close(mlp(x), torch.clamp(x @ w1.T + b1, min=0) ** power @ w2.T + b2)

    mlp = perturb(model(mlp="swiglu")).transformer.h[0].mlp
    h = swiglu_width(SMALL.n_embd)
    assert mlp.c_fc.weight.shape == (2 * h, SMALL.n_embd) and mlp.c_proj.weight.shape == (SMALL.n_embd, h)
    pre = x @ mlp.c_fc.weight.T + mlp.c_fc.bias
    gate, value = pre[..., :h], pre[..., h:]
    expected = (gate * torch.sigmoid(gate) * value) @ mlp.c_proj.weight.T + mlp.c_proj.bias
    torch.testing.assert_close(mlp(x), expected)


def test_swiglu_width_keeps_the_mlp_weights():
    assert swiglu_width(768) == 2048 and 3 * 768 * swiglu_width(768) == 2 * 768 * 4 * 768
    for n in (32, 64, 100, 128, 384):
        w = swiglu_width(n)
        assert w % 8 == 0 and 0 <= 3 * w - 8 * n < 24


# -- head, init, logits ------------------------------------------------------------------------------------
def test_untied_head_has_its_own_parameters():
    tied, untied = model(), model(untied_head=True)
    assert tied.lm_head.weight is tied.transformer.wte.weight
    assert untied.lm_head.weight is not untied.transformer.wte.weight
    assert untied.num_params() - tied.num_params() == SMALL.vocab_size * SMALL.n_embd
    _, loss = untied.train()(idx(), idx(2))
    loss.backward()
    g_head, g_wte = untied.lm_head.weight.grad, untied.transformer.wte.weight.grad
    assert g_head is not None and g_wte is not None and not torch.allclose(g_head, g_wte)
    sd = untied.state_dict()
    assert not torch.equal(sd["lm_head.weight"], sd["transformer.wte.weight"])


def test_zero_init_makes_every_block_the_identity():
    m = model(zero_init=True, n_layer=3)
    for block in m.transformer.h:
        assert not block.attn.c_proj.weight.any() and not block.mlp.c_proj.weight.any()
    x = torch.randn(2, 6, SMALL.n_embd, generator=torch.Generator().manual_seed(0))
    for block in m.transformer.h:
        assert torch.equal(block(x), x)
    ids = idx()
    emb = m.transformer.wte(ids) + m.transformer.wpe(torch.arange(ids.shape[1]))
    torch.testing.assert_close(m(ids)[0], m.lm_head(m.transformer.ln_f(emb)), atol=0, rtol=0)
    # the other weights are GPT-2's initialization
    assert m.transformer.h[0].attn.c_attn.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_softcap_bounds_the_logits_and_is_tanh_of_the_plain_ones():
    plain = perturb(model(), scale=2.0)  # large weights: logits far beyond the cap
    capped = model(softcap=4.0)
    capped.load_state_dict(plain.state_dict())
    raw, out = plain(idx())[0], capped(idx())[0]
    assert raw.abs().max() > 8 and out.abs().max() <= 4.0
    torch.testing.assert_close(out, 4.0 * torch.tanh(raw / 4.0))


def test_a_modern_model_is_not_exported_as_huggingface_gpt2(tmp_path):
    m = model(**{**ALL_ON, "mlp": "swiglu"})
    with pytest.raises(ValueError, match="rope"):
        m.save_pretrained(tmp_path / "hf")


# -- Muon ---------------------------------------------------------------------------------------------------
def test_muon_takes_every_hidden_matrix_of_a_modern_model_and_adamw_the_rest():
    m = model(**{**ALL_ON, "mlp": "swiglu"})
    muon, adamw = configure_optimizers(m, TrainConfig(optimizer="muon"))
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    in_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    hidden = {id(mod.weight) for b in m.transformer.h for mod in (b.attn.c_attn, b.attn.c_proj, b.mlp.c_fc,
                                                                   b.mlp.c_proj)}
    assert in_muon == hidden
    in_adamw = {id(p) for g in adamw.param_groups for p in g["params"]}
    assert {id(m.lm_head.weight), id(m.transformer.wte.weight)} <= in_adamw  # the untied head too
    assert in_adamw | in_muon == {id(p) for p in m.parameters()} and not in_adamw & in_muon


# -- the character-level front-end and the command line ------------------------------------------------
TEXT = "".join(np.random.default_rng(0).choice(list("abcde \n"), 3000))
CHARS = dict(block_size=16, n_layer=1, n_head=2, n_embd=16, batch_size=4, max_steps=4, warmup_steps=1,
             eval_interval=2, eval_steps=2, log_interval=1, device="cpu")


def test_train_chars_trains_a_gpt2_on_characters(tmp_path):
    cfg = char_config(**CHARS, rope=True, mlp="swiglu", optimizer="muon")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as train_many's workers run (the thread count changes float sums)
    try:
        r = train_chars(cfg, tmp_path / "run", text=TEXT, log=None)
    finally:
        torch.set_num_threads(threads)
    assert isinstance(r.model, GPT2) and r.model.config.vocab_size == 7 and r.step == 4
    assert r.meta["vocab"] == "\n abcde"  # Lecture 7's CharTokenizer: the sorted characters
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["model"]["rope"] is True and run["config"]["model"]["mlp"] == "swiglu"
    back = GPT2.from_checkpoint(tmp_path / "run")
    assert back.config == r.model.config and back.config.rope and back.config.vocab_size == 7
    assert pickle.loads(pickle.dumps(train_chars)) is train_chars  # workers import it by name
    # the same job through train_many (by name, as the chapter runs it) gives the same model
    again = train_many(train_chars, [dict(cfg=cfg, text=TEXT)], workers=1)[0]
    first, second = r.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_switches_on_the_command_line_are_recorded_in_run_json(tmp_path, capsys):
    from zth.gpt2.train import main

    rng = np.random.default_rng(1)
    write_shards([rng.integers(0, 64, 3000).astype(np.uint16)], tmp_path / "data", "rand", shard_tokens=2000,
                 val_tokens=500)
    args = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet",
            "--set", "hellaswag=off", "n_layer=1", "n_head=2", "n_embd=16", "vocab_size=64", "block_size=16",
            "seq_len=16", "total_batch_tokens=32",
            "batch_size=2", "max_steps=2", "eval_interval=2", "eval_steps=1", "rope=true", "rmsnorm=true",
            "qk_norm=true", "mlp=relu2", "untied_head=true", "zero_init=true", "softcap=15", "optimizer=muon"]
    assert main(args) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert {k: run["config"]["model"][k] for k in ALL_ON} == {**ALL_ON, "softcap": 15.0}
    assert run["config"]["train"]["optimizer"] == "muon"
    assert main(["--print-config", "--set", "mlp=swiglu"]) == 0
    assert '"mlp": "swiglu"' in capsys.readouterr().out
    assert main(["--print-config", "--set", "mlp=gelu2"]) == 2
    assert "mlp must be one of" in capsys.readouterr().err


@pytest.mark.skipif(zth.data.status().get("shakespeare") is None,
                    reason="tiny Shakespeare not present locally (set ZTH_DATA_DIR); tests never download")
def test_the_chars_command_trains_its_presets_and_stops_at_the_target(tmp_path, capsys):
    from zth.gpt2.chars import PRESETS, main

    assert PRESETS["speedrun"].train.target_loss == 1.70 and not PRESETS["ladder"].model.modern_switches()
    small = ["--device", "cpu", "--quiet", "--set", "n_layer=1", "n_embd=16", "n_head=2", "block_size=16",
             "batch_size=4", "max_steps=6", "eval_interval=2", "eval_steps=1", "log_interval=2"]
    assert main(["--preset", "speedrun", "--out", str(tmp_path / "a"), *small, "target_loss=100"]) == 0
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    model = run["config"]["model"]
    assert run["preset"] == "speedrun" and model["rope"] and model["vocab_size"] == 65
    assert run["results"]["step"] == 0  # every loss is below 100: the first evaluation ends the run
    assert main(["--preset", "ladder", "--out", str(tmp_path / "b"), *small, "rope=true"]) == 0
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["results"]["step"] == 6 and run["config"]["model"]["rope"]
    assert run["config"]["train"]["target_loss"] == 0
    assert main(["--preset", "ladder", "--out", str(tmp_path / "b"), *small]) == 2  # never overwrites a run
    assert main(["--preset", "fast", "--print-config"]) == 2
    assert "unknown preset 'fast'" in capsys.readouterr().err
