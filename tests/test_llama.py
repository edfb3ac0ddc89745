"""zth.llama: the layers against their formulas and torch, GQA, the KV cache, llama2.c files, HF parity."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zth.llama import (
    PRESETS,
    FeedForward,
    KVCache,
    Llama,
    LlamaConfig,
    RMSNorm,
    apply_rope,
    rope_frequencies,
    swiglu_hidden_dim,
)
from zth.llama.llama2c import (
    Llama2cError,
    export_llama2c,
    load_llama2c,
    read_header,
    read_tokenizer_bin,
    write_tokenizer_bin,
)

SMALL = dict(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=61, multiple_of=8, max_seq_len=48)


pytestmark = pytest.mark.usefixtures("one_thread")


def random_model(seed: int = 0, **overrides) -> Llama:
    """A small model with every parameter (norm gains included) away from its initial value."""
    torch.manual_seed(seed)
    model = Llama(LlamaConfig(**{**SMALL, **overrides})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


# --- layers -------------------------------------------------------------------------------------
def test_rmsnorm_matches_formula_and_torch():
    torch.manual_seed(0)
    norm = RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(16))
    x = torch.randn(3, 5, 16)
    formula = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-5) * norm.weight
    torch.testing.assert_close(norm(x), formula)
    ref = torch.nn.RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        ref.weight.copy_(norm.weight)
    torch.testing.assert_close(norm(x), ref(x))
    assert norm(x.double()).dtype == torch.float64


def test_rope_is_complex_rotation_and_relative():
    torch.manual_seed(0)
    hd, T = 16, 10
    cos, sin = rope_frequencies(hd, T)
    x = torch.randn(2, 3, T, hd)
    # Meta's reference: view pairs as complex numbers and multiply by exp(i * angle)
    angles = torch.outer(torch.arange(T).float(), 1.0 / 10000 ** (torch.arange(0, hd, 2).float() / hd))
    ref = torch.view_as_real(torch.view_as_complex(x.reshape(2, 3, T, hd // 2, 2))
                             * torch.polar(torch.ones_like(angles), angles)).flatten(-2)
    torch.testing.assert_close(apply_rope(x, cos, sin), ref)
    # rotations keep lengths; the score <R_m q, R_n k> depends only on m - n
    torch.testing.assert_close(apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1))
    q, k = torch.randn(hd), torch.randn(hd)
    cos, sin = rope_frequencies(hd, 64)
    rot = lambda v, m: apply_rope(v[None], cos[m:m + 1], sin[m:m + 1])[0]
    scores = [torch.dot(rot(q, m), rot(k, m - 3)) for m in (3, 10, 40, 63)]
    for s in scores[1:]:
        torch.testing.assert_close(s, scores[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(torch.dot(rot(q, 10), rot(k, 5)), scores[0], atol=1e-3)


def test_swiglu_formula_and_hidden_dim():
    torch.manual_seed(0)
    ff = FeedForward(8, 24)
    x = torch.randn(4, 8)
    gate = x @ ff.w1.weight.T
    expect = ((gate * torch.sigmoid(gate)) * (x @ ff.w3.weight.T)) @ ff.w2.weight.T
    torch.testing.assert_close(ff(x), expect)
    assert swiglu_hidden_dim(64, 4) == 172  # llama2.c's 260K model
    assert swiglu_hidden_dim(4096, 256) == 11008  # Llama 2 7B


def test_stories260k_shape():
    model = Llama(PRESETS["stories260K"])
    assert model.config.hidden_dim == 172 and model.config.head_dim == 8
    assert model.num_params() == 260_032
    assert model.output.weight is model.tok_embeddings.weight


def test_config_errors():
    with pytest.raises(ValueError, match="n_kv_heads"):
        LlamaConfig(dim=32, n_heads=4, n_kv_heads=3)
    with pytest.raises(ValueError, match="divisible"):
        LlamaConfig(dim=30, n_heads=4)
    with pytest.raises(ValueError, match="even"):
        LlamaConfig(dim=12, n_heads=4)


# --- attention and the model ----------------------------------------------------------------------
def test_gqa_equals_attention_with_repeated_kv_heads():
    gqa = random_model(1)
    mha = Llama(LlamaConfig(**{**SMALL, "n_kv_heads": SMALL["n_heads"]})).eval()
    state = gqa.state_dict()
    hd, rep = gqa.config.head_dim, SMALL["n_heads"] // SMALL["n_kv_heads"]
    for name in list(state):
        if name.endswith(("attention.wk.weight", "attention.wv.weight")):  # copy each kv head rep times
            w = state[name]
            heads = w.view(SMALL["n_kv_heads"], hd, -1).repeat_interleave(rep, dim=0)
            state[name] = heads.reshape(-1, w.shape[1])
    mha.load_state_dict(state)
    idx = torch.randint(0, SMALL["vocab_size"], (2, 20))
    torch.testing.assert_close(gqa(idx)[0], mha(idx)[0], atol=1e-5, rtol=1e-5)
    cache_gqa, cache_mha = KVCache(gqa.config, 1), KVCache(mha.config, 1)
    assert cache_mha.nbytes == rep * cache_gqa.nbytes == KVCache.bytes_needed(mha.config)


def test_causal_and_loss():
    model = random_model(2)
    idx = torch.randint(0, SMALL["vocab_size"], (2, 16))
    changed = idx.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % SMALL["vocab_size"]
    a, b = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])
    targets = torch.randint(0, SMALL["vocab_size"], (2, 16))
    targets[0, :3] = -1
    logits, loss = model(idx, targets)
    keep = targets.view(-1) != -1
    torch.testing.assert_close(loss, F.cross_entropy(logits.view(-1, logits.size(-1))[keep],
                                                     targets.view(-1)[keep]))


def test_kv_cache_logits_equal_full_forward():
    model = random_model(3)
    idx = torch.randint(0, SMALL["vocab_size"], (3, 40))
    full = model(idx)[0]
    cache = KVCache(model.config, 3)
    parts = [model(idx[:, :7], cache=cache, start=0)[0], model(idx[:, 7:19], cache=cache, start=7)[0]]
    parts += [model(idx[:, t:t + 1], cache=cache, start=t)[0] for t in range(19, 40)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.8, 10), (0.0, None)])
def test_generate_with_cache_equals_without(temperature, top_k):
    model = random_model(4)
    prompt = torch.randint(0, SMALL["vocab_size"], (2, 5))
    outs = []
    for use_cache in (True, False):
        gen = torch.Generator().manual_seed(7)
        outs.append(model.generate(prompt, 40, temperature, top_k, gen, use_cache=use_cache))
    assert outs[0].shape == (2, 45)
    assert torch.equal(outs[0], outs[1])
    assert torch.equal(outs[0][:, :5], prompt)
    with pytest.raises(ValueError, match="max_seq_len"):
        model.generate(prompt, SMALL["max_seq_len"])


def test_generate_stops_at_stop_token():
    model = random_model(5)
    prompt = torch.zeros(1, 1, dtype=torch.long)
    full = model.generate(prompt, 30, temperature=0.0)
    stop = full[0, 4].item()  # stop at the first occurrence of the 4th generated token
    first = 1 + full[0, 1:].tolist().index(stop)
    out = model.generate(prompt, 30, temperature=0.0, stop_token=stop)
    assert torch.equal(out, full[:, :first + 1])


# --- llama2.c files ---------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("tied", [True, False])
def test_llama2c_round_trip_is_exact(tmp_path, version, tied):
    model = random_model(6, tie_embeddings=tied)
    path = tmp_path / "model.bin"
    size = export_llama2c(model, path, version=version)
    assert path.stat().st_size == size
    c = model.config
    n_floats = model.num_params() + (c.max_seq_len * c.head_dim if version == 0 else 0)
    assert size == (28 if version == 0 else 256) + 4 * n_floats
    h = read_header(path)
    got = (h["version"], h["shared_classifier"], h["dim"], h["hidden_dim"], h["n_kv_heads"], h["vocab_size"])
    assert got == (version, tied, c.dim, c.hidden_dim, c.n_kv_heads, c.vocab_size)
    back = load_llama2c(path)
    assert back.config.tie_embeddings == tied
    ours, theirs = model.state_dict(), back.state_dict()
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name
    idx = torch.randint(0, c.vocab_size, (1, 12))
    assert torch.equal(model(idx)[0], back(idx)[0])


def test_llama2c_v0_layout(tmp_path):
    """The legacy file starts with seven int32 and the embedding, and stores the RoPE tables."""
    model = random_model(7)
    path = tmp_path / "v0.bin"
    export_llama2c(model, path, version=0)
    raw = np.fromfile(path, dtype="<i4", count=7)
    c = model.config
    expect = [c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.max_seq_len]
    assert raw.tolist() == expect
    floats = np.fromfile(path, dtype="<f4", offset=28)
    emb = model.tok_embeddings.weight.detach().numpy().ravel()
    assert np.array_equal(floats[:emb.size], emb)
    cos, _ = rope_frequencies(c.head_dim, c.max_seq_len)
    rope_at = floats.size - 2 * cos.numel()
    assert np.array_equal(floats[rope_at:rope_at + cos.numel()], cos.numpy().ravel())


def test_llama2c_bad_files(tmp_path):
    model = random_model(8)
    path = tmp_path / "m.bin"
    export_llama2c(model, path, version=1)
    truncated = tmp_path / "t.bin"
    truncated.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(Llama2cError, match="truncated"):
        load_llama2c(truncated)
    v2 = tmp_path / "v2.bin"
    v2.write_bytes(path.read_bytes()[:4] + (2).to_bytes(4, "little") + path.read_bytes()[8:])
    with pytest.raises(Llama2cError, match="version 2"):
        load_llama2c(v2)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello")
    with pytest.raises(Llama2cError, match="too short"):
        load_llama2c(junk)
    with pytest.raises(ValueError, match="version"):
        export_llama2c(model, tmp_path / "x.bin", version=2)
    with pytest.raises(ValueError, match="rope_theta"):
        export_llama2c(Llama(LlamaConfig(**{**SMALL, "rope_theta": 500000.0})), tmp_path / "y.bin")
    assert not (tmp_path / "y.bin").exists()


def test_tokenizer_bin_round_trip(tmp_path):
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n", b"a", b" the", "é".encode(), b"\xff"]
    scores = [0.0, 0.0, 0.0, -1.0, -2.5, -3.0, 0.0]
    path = tmp_path / "tokenizer.bin"
    size = write_tokenizer_bin(path, pieces, scores)
    assert size == path.stat().st_size == 4 + sum(8 + len(p) for p in pieces)
    got, got_scores, max_len = read_tokenizer_bin(path, vocab_size=len(pieces))
    assert got == pieces and got_scores == scores and max_len == 6
    with pytest.raises(Llama2cError, match="expected"):
        read_tokenizer_bin(path, vocab_size=10)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(Llama2cError):
        read_tokenizer_bin(path)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
@pytest.mark.parametrize("version", [0, 1])
def test_c_reader_computes_the_same_logits(tmp_path, version):
    """Our own C program reads the file and runs the forward pass: same header, same logits."""
    cc = shutil.which("cc") or shutil.which("gcc")
    exe = tmp_path / "llama2c_forward"
    src = Path(__file__).with_name("llama2c_forward.c")
    subprocess.run([cc, "-O1", "-o", str(exe), str(src), "-lm"], check=True, capture_output=True)
    model = random_model(9, tie_embeddings=version == 0)
    path = tmp_path / "m.bin"
    export_llama2c(model, path, version=version)
    tokens = [5, 17, 3, 60, 0, 9, 33]
    out = subprocess.run([str(exe), str(path), *map(str, tokens)], check=True, capture_output=True, text=True)
    header, *lines = out.stdout.splitlines()
    c = model.config
    assert header == (f"version {version} dim {c.dim} hidden_dim {c.hidden_dim} n_layers {c.n_layers} "
                      f"n_heads {c.n_heads} n_kv_heads {c.n_kv_heads} vocab_size {c.vocab_size} "
                      f"seq_len {c.max_seq_len} shared {int(c.tie_embeddings)}")
    c_logits = torch.tensor([float(v) for v in lines])
    ours = model(torch.tensor([tokens]))[0][0, -1].detach()
    torch.testing.assert_close(c_logits, ours, atol=1e-4, rtol=1e-4)


# --- HuggingFace ------------------------------------------------------------------------------------
transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("tied", [True, False])
def test_hf_logits_parity_both_ways(tied):
    from zth.llama.hf import from_hf, to_hf

    model = random_model(10, tie_embeddings=tied)
    hf = to_hf(model)
    assert isinstance(hf, transformers.LlamaForCausalLM)
    assert hf.config.num_key_value_heads == SMALL["n_kv_heads"]
    idx = torch.randint(0, SMALL["vocab_size"], (2, 33))
    with torch.no_grad():
        ours, theirs = model(idx)[0], hf(idx).logits
    assert (ours - theirs).abs().max().item() < 1e-4
    # a randomly initialized HF model, converted to zth
    torch.manual_seed(11)
    hf2 = transformers.LlamaForCausalLM(hf.config).eval()
    back = from_hf(hf2)
    with torch.no_grad():
        assert (back(idx)[0] - hf2(idx).logits).abs().max().item() < 1e-4
    greedy_ours = back.generate(idx[:1, :4], 12, temperature=0.0)
    greedy_hf = hf2.generate(idx[:1, :4], max_new_tokens=12, do_sample=False, min_new_tokens=12)
    assert torch.equal(greedy_ours, greedy_hf)


def test_hf_save_and_load_folder(tmp_path):
    from zth.llama.hf import from_pretrained, save_pretrained

    model = random_model(12)
    save_pretrained(model, tmp_path / "hf")
    assert {"config.json", "model.safetensors"} <= {p.name for p in (tmp_path / "hf").iterdir()}
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "hf")
    idx = torch.randint(0, SMALL["vocab_size"], (1, 20))
    with torch.no_grad():
        assert (hf(idx).logits - model(idx)[0]).abs().max().item() < 1e-4
    back = from_pretrained(tmp_path / "hf")
    for name, t in model.state_dict().items():
        assert torch.equal(t, back.state_dict()[name]), name


def test_generate_runs_in_eval_mode_and_restores_training():
    model = random_model(13, dropout=0.5).train()
    prompt = torch.zeros(1, 1, dtype=torch.long)
    outs = [model.generate(prompt, 10, temperature=0.0, use_cache=c) for c in (True, False)]
    assert torch.equal(*outs) and model.training
