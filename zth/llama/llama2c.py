"""llama2.c's binary files: the model checkpoint (legacy v0 and versioned v1) and ``tokenizer.bin``.

Model file, all little-endian:

* **v0 (legacy)**: seven int32 (``dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
  max_seq_len``; a negative ``vocab_size`` means an untied output matrix), then float32 tensors:
  embedding, per-layer attention norms, wq, wk, wv, wo, ffn norms, w1, w2, w3, final norm, the
  RoPE cos and sin tables (``max_seq_len x head_dim/2``), and the output matrix if untied.
* **v1**: a 256-byte header (uint32 magic ``0x616b3432`` = "ak42", int32 version 1, the seven
  int32, a uint8 "shared classifier" flag, zero padding), then float32 tensors: attention
  norms, ffn norms, final norm, embedding, wq, wk, wv, wo, w1, w2, w3, output if untied.

Neither format records ``norm_eps`` (1e-5) or ``rope_theta`` (10000): llama2.c assumes them, so
we refuse to export a model that uses other values. ``tokenizer.bin``: an int32 maximum token
length, then per token a float32 score, an int32 byte length and the token's bytes.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import torch

from zth.llama.layers import rope_frequencies
from zth.llama.model import Llama, LlamaConfig
from zth.storage import atomic_path

__all__ = ["MAGIC", "Llama2cError", "export_llama2c", "load_llama2c", "read_header", "read_tokenizer_bin",
           "write_tokenizer_bin"]

MAGIC = 0x616B3432  # "ak42"
HEADER_V1 = 256
_PER_LAYER = ("attention.wq", "attention.wk", "attention.wv", "attention.wo")
_FFN = ("feed_forward.w1", "feed_forward.w2", "feed_forward.w3")


class Llama2cError(ValueError):
    """A llama2.c file is malformed, truncated, or of an unsupported version."""


def _atomic_write(path: str | os.PathLike, chunks) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for chunk in chunks:
            f.write(chunk)


def _tensor_order(config: LlamaConfig, version: int, shared: bool) -> list[str]:
    """State-dict names in the order the format stores them (``rope.cos``/``rope.sin``: tables)."""
    layers = range(config.n_layers)
    each = lambda suffix: [f"layers.{i}.{suffix}.weight" for i in layers]
    attn = [n for s in _PER_LAYER for n in each(s)]
    ffn = [n for s in _FFN for n in each(s)]
    if version == 0:
        names = (["tok_embeddings.weight", *each("attention_norm"), *attn, *each("ffn_norm"), *ffn,
                  "norm.weight", "rope.cos", "rope.sin"])
    else:
        names = [*each("attention_norm"), *each("ffn_norm"), "norm.weight", "tok_embeddings.weight",
                 *attn, *ffn]
    return names if shared else [*names, "output.weight"]


def _config_ints(c: LlamaConfig) -> tuple[int, ...]:
    return (c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.max_seq_len)


def export_llama2c(model: Llama, path: str | os.PathLike, version: int = 0) -> int:
    """Write ``model`` as a llama2.c checkpoint, version 0 (what ``run.c`` reads) or 1; returns its size."""
    c = model.config
    if version not in (0, 1):
        raise ValueError(f"llama2.c export supports version 0 (legacy) and 1, not {version}")
    if c.norm_eps != 1e-5 or c.rope_theta != 10000.0:
        raise ValueError("llama2.c assumes norm_eps=1e-5 and rope_theta=10000; this model uses "
                         f"norm_eps={c.norm_eps}, rope_theta={c.rope_theta}")
    sd = model.state_dict()
    shared = c.tie_embeddings
    cos, sin = rope_frequencies(c.head_dim, c.max_seq_len, c.rope_theta)
    sd["rope.cos"], sd["rope.sin"] = cos, sin
    ints = list(_config_ints(c))
    if version == 0:
        ints[5] = ints[5] if shared else -ints[5]
        header = struct.pack("<7i", *ints)
    else:
        header = struct.pack("<Ii7iB", MAGIC, 1, *ints, int(shared))
        header += b"\0" * (HEADER_V1 - len(header))
    blobs = [header] + [sd[n].detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4").tobytes()
                        for n in _tensor_order(c, version, shared)]
    _atomic_write(path, blobs)
    return sum(len(b) for b in blobs)


def read_header(path: str | os.PathLike) -> dict:
    """The header of a llama2.c checkpoint: version, config fields, ``shared_classifier``, offset."""
    with open(path, "rb") as f:
        head = f.read(HEADER_V1)
    if len(head) < 28:
        raise Llama2cError(f"{path}: {len(head)} bytes is too short for a llama2.c checkpoint header")
    (magic,) = struct.unpack_from("<I", head)
    if magic == MAGIC:
        if len(head) < HEADER_V1:
            raise Llama2cError(f"{path}: truncated version header ({len(head)} of {HEADER_V1} bytes)")
        version, *ints = struct.unpack_from("<i7i", head, 4)
        if version != 1:
            what = "Q8_0 int8 (version 2)" if version == 2 else f"version {version}"
            raise Llama2cError(f"{path}: {what} llama2.c files are not supported; export float32 v0 or v1")
        shared, offset = bool(head[36]), HEADER_V1
    else:
        version, ints = 0, list(struct.unpack_from("<7i", head))
        shared, offset = ints[5] > 0, 28
        ints[5] = abs(ints[5])
    keys = ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "max_seq_len")
    out = dict(zip(keys, ints, strict=True), version=version, shared_classifier=shared, offset=offset)
    if min(ints) < 1 or ints[0] % ints[3] or ints[3] % ints[4]:
        raise Llama2cError(f"{path}: header {out} does not describe a valid model")
    return out


def load_llama2c(path: str | os.PathLike) -> Llama:
    """Load a float32 llama2.c checkpoint (v0 or v1) into a ``Llama``; the weights are exact."""
    h = read_header(path)
    try:
        config = LlamaConfig(**{k: h[k] for k in ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads",
                                                  "vocab_size", "max_seq_len")},
                             tie_embeddings=h["shared_classifier"])
    except ValueError as e:
        raise Llama2cError(f"{path}: {e}") from None
    model = Llama(config)
    shapes = {n: p.shape for n, p in model.state_dict().items()}
    shapes["rope.cos"] = shapes["rope.sin"] = (config.max_seq_len, config.head_dim // 2)
    names = _tensor_order(config, h["version"], h["shared_classifier"])
    expected = h["offset"] + 4 * sum(int(np.prod(shapes[n])) for n in names)
    size = os.path.getsize(path)
    if size != expected:
        raise Llama2cError(f"{path}: {size} bytes, but its header describes a {expected}-byte file "
                           "(truncated or not a llama2.c checkpoint)")
    data = np.fromfile(path, dtype="<f4", offset=h["offset"])
    state, pos = {}, 0
    for n in names:
        k = int(np.prod(shapes[n]))
        state[n] = torch.from_numpy(data[pos:pos + k].astype(np.float32)).view(shapes[n])
        pos += k
    state.pop("rope.cos", None), state.pop("rope.sin", None)
    if h["shared_classifier"]:
        state["output.weight"] = state["tok_embeddings.weight"]
    model.load_state_dict(state, strict=True)
    return model


def write_tokenizer_bin(path: str | os.PathLike, pieces: list[bytes], scores: list[float]) -> int:
    """Write llama2.c's ``tokenizer.bin``: the tokens' bytes and merge scores; returns its size."""
    if len(pieces) != len(scores):
        raise ValueError(f"{len(pieces)} pieces but {len(scores)} scores")
    blobs = [struct.pack("<i", max((len(p) for p in pieces), default=0))]
    blobs += [struct.pack("<fi", s, len(p)) + p for p, s in zip(pieces, scores, strict=True)]
    _atomic_write(path, blobs)
    return sum(len(b) for b in blobs)


def read_tokenizer_bin(path: str | os.PathLike, vocab_size: int | None = None
                       ) -> tuple[list[bytes], list[float], int]:
    """Read ``tokenizer.bin``: ``(pieces, scores, max_token_length)``.

    The file does not store the vocabulary size (llama2.c takes it from the model); without
    ``vocab_size`` every entry up to the end of the file is read.
    """
    raw = Path(path).read_bytes()
    if len(raw) < 4:
        raise Llama2cError(f"{path}: too short for a tokenizer.bin")
    (max_len,) = struct.unpack_from("<i", raw)
    pieces, scores, pos = [], [], 4
    while pos < len(raw) and (vocab_size is None or len(pieces) < vocab_size):
        if pos + 8 > len(raw):
            raise Llama2cError(f"{path}: truncated entry {len(pieces)}")
        score, n = struct.unpack_from("<fi", raw, pos)
        if n < 0 or n > max_len or pos + 8 + n > len(raw):
            raise Llama2cError(f"{path}: entry {len(pieces)} has an invalid length {n}")
        pieces.append(raw[pos + 8:pos + 8 + n])
        scores.append(score)
        pos += 8 + n
    if vocab_size is not None and len(pieces) != vocab_size:
        raise Llama2cError(f"{path}: {len(pieces)} tokens, expected {vocab_size}")
    return pieces, scores, max_len
