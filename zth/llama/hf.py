"""HuggingFace interop: ``zth.llama.Llama`` to and from ``transformers.LlamaForCausalLM``.

The only non-trivial step is rotary embeddings. Meta's code (and ours, and llama2.c's) rotates
interleaved pairs ``(2i, 2i+1)`` of a head; ``transformers`` rotates the two halves
``(i, i + head_dim/2)``. Permuting the output rows of ``wq`` and ``wk`` within each head turns
one convention into the other (HF's ``convert_llama_weights_to_hf.py`` does the same), so the
logits agree. Requires ``transformers`` (and ``safetensors`` to save).
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
from pathlib import Path

import torch

from zth.llama.model import Llama, LlamaConfig

__all__ = ["from_hf", "from_hf_state_dict", "from_pretrained", "halves_to_interleaved", "hf_config",
           "interleaved_to_halves", "save_pretrained", "to_hf", "to_hf_state_dict"]

# our name suffix -> HF name suffix, per layer
_LAYER_NAMES = {
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
_TOP_NAMES = {"tok_embeddings.weight": "model.embed_tokens.weight", "norm.weight": "model.norm.weight",
              "output.weight": "lm_head.weight"}


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ImportError("HuggingFace interop needs transformers: pip install transformers") from None
    return transformers


def interleaved_to_halves(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder each head's rows from pairs ``(2i, 2i+1)`` to halves ``(i, i + head_dim/2)``."""
    rows, cols = w.shape
    return w.view(n_heads, rows // n_heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def halves_to_interleaved(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """The inverse of ``interleaved_to_halves``."""
    rows, cols = w.shape
    return w.view(n_heads, 2, rows // n_heads // 2, cols).transpose(1, 2).reshape(rows, cols)


def hf_config(config: LlamaConfig):
    """The ``transformers.LlamaConfig`` of a zth ``LlamaConfig``."""
    tf = _transformers()
    kw = dict(vocab_size=config.vocab_size, hidden_size=config.dim, intermediate_size=config.hidden_dim,
              num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads,
              num_key_value_heads=config.n_kv_heads, max_position_embeddings=config.max_seq_len,
              rms_norm_eps=config.norm_eps, tie_word_embeddings=config.tie_embeddings,
              hidden_act="silu", attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2)
    if "rope_parameters" in inspect.signature(tf.LlamaConfig.__init__).parameters:  # transformers >= 5
        kw["rope_parameters"] = {"rope_type": "default", "rope_theta": config.rope_theta}
    else:
        kw["rope_theta"] = config.rope_theta
    return tf.LlamaConfig(**kw)


def _config_from_hf(hf) -> LlamaConfig:
    rope = getattr(hf, "rope_parameters", None)  # transformers >= 5; before: rope_theta, rope_scaling
    if rope is None:
        rope = dict(getattr(hf, "rope_scaling", None) or {"rope_type": "default"},
                    rope_theta=getattr(hf, "rope_theta", 10000.0))
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ValueError(f"only plain rotary embeddings are supported, not {rope}")
    if hf.hidden_act != "silu" or getattr(hf, "attention_bias", False) or getattr(hf, "mlp_bias", False):
        raise ValueError("only Llama 2 models (SiLU, no biases) are supported")
    head_dim = getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads
    if head_dim * hf.num_attention_heads != hf.hidden_size:
        raise ValueError(f"head_dim={head_dim} x {hf.num_attention_heads} heads "
                         f"!= hidden_size={hf.hidden_size}")
    return LlamaConfig(dim=hf.hidden_size, n_layers=hf.num_hidden_layers, n_heads=hf.num_attention_heads,
                       n_kv_heads=hf.num_key_value_heads or hf.num_attention_heads,
                       vocab_size=hf.vocab_size, hidden_dim=hf.intermediate_size, norm_eps=hf.rms_norm_eps,
                       max_seq_len=hf.max_position_embeddings, rope_theta=float(rope["rope_theta"]),
                       tie_embeddings=bool(hf.tie_word_embeddings))


def to_hf_state_dict(model: Llama) -> dict[str, torch.Tensor]:
    """Our weights under HF names, with ``wq``/``wk`` rows permuted to HF's rotary layout."""
    c, out = model.config, {}
    for name, t in model.state_dict().items():
        if name in _TOP_NAMES:
            out[_TOP_NAMES[name]] = t
            continue
        _, i, suffix = name.split(".", 2)
        if suffix == "attention.wq.weight":
            t = interleaved_to_halves(t, c.n_heads)
        elif suffix == "attention.wk.weight":
            t = interleaved_to_halves(t, c.n_kv_heads)
        out[f"model.layers.{i}.{_LAYER_NAMES[suffix]}"] = t
    return out


def from_hf_state_dict(state: dict[str, torch.Tensor], config: LlamaConfig) -> Llama:
    """A ``Llama`` from HF-named weights (the inverse of ``to_hf_state_dict``)."""
    model = Llama(config)
    ours = {}
    for name in model.state_dict():
        if name in _TOP_NAMES:
            hf_name = _TOP_NAMES[name]
            if name == "output.weight" and config.tie_embeddings and hf_name not in state:
                hf_name = _TOP_NAMES["tok_embeddings.weight"]
        else:
            _, i, suffix = name.split(".", 2)
            hf_name = f"model.layers.{i}.{_LAYER_NAMES[suffix]}"
        if hf_name not in state:
            raise ValueError(f"HF state dict has no {hf_name!r} (needed for {name!r})")
        t = state[hf_name]
        if name.endswith("attention.wq.weight"):
            t = halves_to_interleaved(t, config.n_heads)
        elif name.endswith("attention.wk.weight"):
            t = halves_to_interleaved(t, config.n_kv_heads)
        ours[name] = t
    model.load_state_dict(ours, strict=True)
    return model


def to_hf(model: Llama):
    """A ``transformers.LlamaForCausalLM`` with this model's weights (same logits)."""
    hf = _transformers().LlamaForCausalLM(hf_config(model.config))
    hf.load_state_dict(to_hf_state_dict(model), strict=True)
    return hf.eval()


def from_hf(hf_model) -> Llama:
    """A ``Llama`` from a ``transformers.LlamaForCausalLM``."""
    config = _config_from_hf(hf_model.config)
    return from_hf_state_dict({k: v.detach().float() for k, v in hf_model.state_dict().items()}, config)


def save_pretrained(model: Llama, path: str | os.PathLike) -> None:
    """Write a HF model folder (``config.json``, ``model.safetensors``) that ``transformers`` loads.

    The folder is written beside ``path`` and moved into place file by file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        to_hf(model).save_pretrained(tmp)
        path.mkdir(exist_ok=True)
        for f in tmp.iterdir():
            os.replace(f, path / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def from_pretrained(path: str | os.PathLike) -> Llama:
    """Load a HF Llama folder (or, with internet, a hub name) into a ``Llama``."""
    tf = _transformers()
    dtype_kw = "dtype" if int(tf.__version__.split(".")[0]) >= 5 else "torch_dtype"
    return from_hf(tf.LlamaForCausalLM.from_pretrained(str(path), **{dtype_kw: torch.float32}))
