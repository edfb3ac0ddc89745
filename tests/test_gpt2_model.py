"""GPT-2 model: parameter count, init, HuggingFace parity both ways, generation."""

from __future__ import annotations

import json

import pytest
import torch
import transformers

from zth.gpt2 import GPT2, GPT2Config

SMALL = dict(n_layer=2, n_head=4, n_embd=32, vocab_size=97, n_positions=24)


def hf_model(seed: int = 0) -> transformers.GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(**SMALL, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                  bos_token_id=None, eos_token_id=None)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # HF zero-initializes biases and LayerNorm; randomize everything
        for p in model.parameters():
            p.normal_(0, 0.1)
    return model


def idx(seed: int = 1, b: int = 3, t: int = 24) -> torch.Tensor:
    return torch.randint(0, SMALL["vocab_size"], (b, t), generator=torch.Generator().manual_seed(seed))


def test_parameter_count_124m():
    with torch.device("meta"):
        ours = GPT2(GPT2Config())
        theirs = transformers.GPT2LMHeadModel(transformers.GPT2Config())
    assert ours.num_params() == 124_439_808 == theirs.num_parameters()
    assert GPT2Config().padded().vocab_size == 50_304
    names = set(ours.state_dict())
    assert {"transformer.wte.weight", "transformer.wpe.weight", "transformer.h.11.attn.c_attn.weight",
            "transformer.h.0.mlp.c_fc.bias", "transformer.h.3.ln_2.weight", "transformer.ln_f.bias",
            "lm_head.weight"} <= names
    assert ours.lm_head.weight is ours.transformer.wte.weight


def test_init_scales_residual_projections():
    torch.manual_seed(0)
    m = GPT2(GPT2Config(n_layer=8, n_head=4, n_embd=256, vocab_size=512, block_size=64))
    h = m.transformer.h
    assert h[0].attn.c_attn.weight.std().item() == pytest.approx(0.02, rel=0.02)
    for proj in (h[0].attn.c_proj, h[5].mlp.c_proj):
        assert proj.weight.std().item() == pytest.approx(0.02 / 4, rel=0.03)  # 1/sqrt(2 * 8)
        assert torch.count_nonzero(proj.bias) == 0


@pytest.mark.parametrize("weights", ["safetensors", "bin", "bin-openai-names"])
def test_from_pretrained_equals_transformers(tmp_path, weights):
    hf = hf_model()
    if weights == "safetensors":
        hf.save_pretrained(tmp_path)
    else:
        hf.config.save_pretrained(tmp_path)
        sd = hf.state_dict()
        if weights == "bin-openai-names":  # OpenAI's upload: no prefix, no lm_head, mask buffers
            sd = {k.removeprefix("transformer."): v for k, v in sd.items() if k != "lm_head.weight"}
            sd["h.0.attn.bias"] = torch.ones(1, 1, 24, 24)
        torch.save(sd, tmp_path / "pytorch_model.bin")
    ours = GPT2.from_pretrained(tmp_path).eval()
    x = idx()
    logits, _ = ours(x)
    torch.testing.assert_close(logits, hf(x).logits, atol=1e-4, rtol=0)


def test_save_pretrained_loads_in_transformers(tmp_path):
    torch.manual_seed(3)
    ours = GPT2(GPT2Config(block_size=24, vocab_size=97, n_layer=2, n_head=4, n_embd=32)).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # non-zero biases and LayerNorm shifts too
    ours.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["n_positions"] == 24
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    x = idx(2)
    torch.testing.assert_close(hf(x).logits, ours(x)[0], atol=1e-4, rtol=0)
    back = GPT2.from_pretrained(tmp_path)  # and the round trip is exact
    for (k, a), (_, b) in zip(ours.state_dict().items(), back.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_loss_and_manual_attention_agree():
    torch.manual_seed(0)
    cfg = GPT2Config(block_size=24, vocab_size=97, n_layer=2, n_head=4, n_embd=32)
    flash = GPT2(cfg).eval()
    manual = GPT2(GPT2Config(**{**cfg.__dict__, "flash": False})).eval()
    manual.load_state_dict(flash.state_dict())
    x, y = idx(4), idx(5)
    (lf, loss_f), (lm, loss_m) = flash(x, y), manual(x, y)
    torch.testing.assert_close(lf, lm, atol=1e-5, rtol=1e-5)
    ref = torch.nn.functional.cross_entropy(lf.view(-1, 97), y.view(-1))
    assert loss_f.item() == pytest.approx(ref.item(), rel=1e-6)
    assert loss_m.item() == pytest.approx(loss_f.item(), rel=1e-5)


def test_bad_input_errors(tmp_path):
    with pytest.raises(ValueError, match="divisible"):
        GPT2Config(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="exceeds block_size"):
        GPT2(GPT2Config(block_size=8, vocab_size=10, n_layer=1, n_head=1, n_embd=8))(torch.zeros(1, 9).long())
    with pytest.raises(ValueError, match="not a folder"):
        GPT2.from_pretrained(tmp_path / "nope")
    (tmp_path / "config.json").write_text(json.dumps({**SMALL, "model_type": "llama"}))
    with pytest.raises(ValueError, match="not a GPT-2"):
        GPT2.from_pretrained(tmp_path)
    hf_model().save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "n_embd": 64}))
    with pytest.raises(ValueError, match="shape"):
        GPT2.from_pretrained(tmp_path)


def test_generate_greedy_equals_transformers_and_sampling_is_seeded(tmp_path):
    hf = hf_model(7)
    hf.save_pretrained(tmp_path)
    ours = GPT2.from_pretrained(tmp_path)
    prompt = idx(6, b=2, t=5)
    out = ours.generate(prompt, 12, top_k=1)
    ref = prompt
    with torch.no_grad():
        for _ in range(12):
            ref = torch.cat([ref, hf(ref).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, ref)
    a = ours.generate(prompt, 15, top_k=5, generator=torch.Generator().manual_seed(1))
    b = ours.generate(prompt, 15, top_k=5, generator=torch.Generator().manual_seed(1))
    c = ours.generate(prompt, 15, top_k=5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (2, 20) and int(a.max()) < 97
    gen = torch.Generator().manual_seed(1)
    limited = ours.generate(prompt, 15, top_k=None, vocab_limit=10, generator=gen)
    assert int(limited[:, 5:].max()) < 10
    # top-k: every sampled token is among the k most likely at its position
    logits, _ = ours(a[:, :-1])
    top5 = logits.topk(5, dim=-1).indices[:, 4:]
    assert bool((top5 == a[:, 5:, None]).any(-1).all())
