"""GPT-2 weights in HuggingFace format: ``config.json`` + ``model.safetensors`` (or ``.bin``).

HuggingFace's GPT-2 stores its four projection matrices as ``Conv1D`` weights of shape
``(in, out)``, the transpose of ``nn.Linear``'s ``(out, in)``; loading and saving transpose
them. Checkpoints published by OpenAI lack the ``transformer.`` prefix and carry the
attention-mask buffers ``attn.bias`` / ``attn.masked_bias``; both variants load.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from zth.gpt2.model import GPT2, GPT2Config
from zth.storage import atomic_path

CONV1D = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")
_BUFFERS = (".attn.bias", ".attn.masked_bias")


def config_to_hf(config: GPT2Config) -> dict:
    """The ``config.json`` of ``transformers.GPT2Config`` for ``config``."""
    return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
            "vocab_size": config.vocab_size, "n_positions": config.block_size, "n_ctx": config.block_size,
            "n_embd": config.n_embd, "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": None,
            "activation_function": "gelu_new", "resid_pdrop": config.dropout, "embd_pdrop": config.dropout,
            "attn_pdrop": config.dropout, "layer_norm_epsilon": config.layer_norm_epsilon,
            "initializer_range": 0.02, "scale_attn_weights": True, "tie_word_embeddings": True,
            "bos_token_id": 50256 if config.vocab_size > 50256 else None,
            "eos_token_id": 50256 if config.vocab_size > 50256 else None}


def config_from_hf(d: dict, **overrides) -> GPT2Config:
    """A ``GPT2Config`` from HuggingFace's ``config.json``; unsupported variants raise ValueError."""
    if d.get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"not a GPT-2 config (model_type {d.get('model_type')!r})")
    if d.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(f"unsupported activation {d['activation_function']!r} (GPT-2 uses gelu_new)")
    if d.get("n_inner") not in (None, 4 * d["n_embd"]):
        raise ValueError(f"unsupported n_inner {d['n_inner']} (zth's MLP is 4 x n_embd)")
    if not d.get("tie_word_embeddings", True):
        raise ValueError("untied word embeddings are not supported (GPT-2 ties wte and lm_head)")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if d.get(flag):
            raise ValueError(f"unsupported GPT-2 option {flag}")
    kw = dict(block_size=d["n_positions"], vocab_size=d["vocab_size"], n_layer=d["n_layer"],
              n_head=d["n_head"], n_embd=d["n_embd"], layer_norm_epsilon=d.get("layer_norm_epsilon", 1e-5),
              dropout=d.get("resid_pdrop", 0.0))
    return GPT2Config(**{**kw, **overrides})


def state_dict_from_hf(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HuggingFace names and layouts -> zth's (drops mask buffers and the tied ``lm_head``)."""
    out = {}
    for k, v in sd.items():
        if k.endswith(_BUFFERS) or k == "lm_head.weight":
            continue
        if not k.startswith("transformer."):
            k = "transformer." + k
        out[k] = v.t() if k.endswith(CONV1D) else v
    return out


def state_dict_to_hf(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """zth's names and layouts -> HuggingFace's (the tied ``lm_head`` is left out, as HF does)."""
    return {k: (v.t() if k.endswith(CONV1D) else v).detach().contiguous().cpu()
            for k, v in sd.items() if k != "lm_head.weight"}


def _resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.is_dir():
        return p
    if p.exists() or str(name_or_path).startswith((".", "/", "~")):
        raise ValueError(f"{name_or_path} is not a folder with a HuggingFace GPT-2 checkpoint")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(name_or_path), allow_patterns=["config.json", "*.safetensors"]))
    except Exception as e:  # ImportError, network and hub errors alike
        raise ValueError(f"{name_or_path!r} is not a local folder and could not be fetched from the "
                         f"HuggingFace hub ({type(e).__name__}: {e})") from None


def load_pretrained(cls: type[GPT2], name_or_path: str | Path, **overrides) -> GPT2:
    """Build ``cls`` from a HuggingFace GPT-2 folder (or hub name); ``overrides`` edit the config."""
    folder = _resolve(name_or_path)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} has no config.json")
    config = config_from_hf(json.loads((folder / "config.json").read_text(encoding="utf-8")), **overrides)
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        hf_sd = load_file(folder / "model.safetensors")
    elif (folder / "pytorch_model.bin").is_file():
        hf_sd = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise ValueError(f"{folder} has neither model.safetensors nor pytorch_model.bin")
    sd = state_dict_from_hf(hf_sd)
    model = cls(config)
    expected = {k for k in model.state_dict() if k != "lm_head.weight"}
    if missing := sorted(expected - sd.keys()):
        raise ValueError(f"{folder}: weights missing for {', '.join(missing[:3])}"
                         f"{' ...' if len(missing) > 3 else ''}")
    if unexpected := sorted(sd.keys() - expected):
        raise ValueError(f"{folder}: unexpected weights {', '.join(unexpected[:3])}")
    own = model.state_dict()
    for k, v in sd.items():
        if v.shape != own[k].shape:
            raise ValueError(f"{folder}: {k} has shape {tuple(v.shape)}, "
                             f"the config implies {tuple(own[k].shape)}")
    with torch.no_grad():
        for k, v in sd.items():
            own[k].copy_(v)
    return model


def save_pretrained(model: GPT2, path: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into the folder ``path`` (atomically each)."""
    from safetensors.torch import save_file

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for name, write in (
        ("model.safetensors", lambda f: save_file(state_dict_to_hf(model.state_dict()), f,
                                                  metadata={"format": "pt"})),
        ("config.json", lambda f: Path(f).write_text(json.dumps(config_to_hf(model.config), indent=2) + "\n",
                                                     encoding="utf-8")),
    ):
        with atomic_path(folder / name) as tmp:
            write(str(tmp))
    return folder
