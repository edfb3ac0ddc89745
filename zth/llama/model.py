"""Llama 2: a GPT with RMSNorm, rotary positions, SwiGLU, grouped-query attention, a KV cache.

Module and parameter names follow Meta's reference code and llama2.c (``tok_embeddings``,
``layers.N.attention.wq``, ``feed_forward.w1``, ``attention_norm``, ``ffn_norm``, ``norm``,
``output``), so the llama2.c export is a list of names. ``model(idx, targets=None)`` returns
``(logits, loss)`` like ``zth.gpt2``'s model, which lets the GPT-2 training loop train it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zth.llama.layers import FeedForward, RMSNorm, apply_rope, rope_frequencies, swiglu_hidden_dim

__all__ = ["PRESETS", "Attention", "Block", "KVCache", "Llama", "LlamaConfig", "sample"]


@dataclass
class LlamaConfig:
    """Shape of a Llama 2 model (the fields of llama2.c's ``ModelArgs``)."""

    dim: int = 288
    n_layers: int = 6
    n_heads: int = 6
    n_kv_heads: int | None = None  # None: as many as n_heads (no grouping)
    vocab_size: int = 32000
    hidden_dim: int | None = None  # None: swiglu_hidden_dim(dim, multiple_of)
    multiple_of: int = 32
    norm_eps: float = 1e-5
    max_seq_len: int = 256
    rope_theta: float = 10000.0
    dropout: float = 0.0
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.hidden_dim is None:
            self.hidden_dim = swiglu_hidden_dim(self.dim, self.multiple_of)
        for name in ("dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "hidden_dim", "max_seq_len"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"LlamaConfig.{name} must be a positive integer, got {getattr(self, name)}")
        if self.dim % self.n_heads:
            raise ValueError(f"dim={self.dim} is not divisible by n_heads={self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim={self.head_dim} must be even for rotary embeddings")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, LlamaConfig] = {
    # llama2.c's smallest TinyStories model: 260K parameters, a 512-token vocabulary
    "stories260K": LlamaConfig(dim=64, n_layers=5, n_heads=8, n_kv_heads=4, vocab_size=512,
                               multiple_of=4, max_seq_len=512),
    "stories15M": LlamaConfig(dim=288, n_layers=6, n_heads=6, vocab_size=32000, max_seq_len=256),
    "stories110M": LlamaConfig(dim=768, n_layers=12, n_heads=12, vocab_size=32000, max_seq_len=1024),
}


class KVCache:
    """Keys and values of every layer for positions seen so far, preallocated to ``max_seq_len``.

    Shape per tensor: ``(n_layers, batch, n_kv_heads, max_seq_len, head_dim)``. Grouped-query
    attention stores ``n_kv_heads`` heads, not ``n_heads``: the cache shrinks by that ratio.
    """

    def __init__(self, config: LlamaConfig, batch_size: int, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        shape = (config.n_layers, batch_size, config.n_kv_heads, config.max_seq_len, config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)

    def update(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k``, ``v`` (``B, n_kv_heads, T, head_dim``) at ``start``; return all so far."""
        end = start + k.shape[2]
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    @property
    def nbytes(self) -> int:
        """Bytes held by the keys and values."""
        return self.k.numel() * self.k.element_size() * 2

    @staticmethod
    def bytes_needed(config: LlamaConfig, batch_size: int = 1, seq_len: int | None = None,
                     bytes_per_value: int = 4) -> int:
        """What a cache for ``config`` would hold, without allocating it (2 x layers x kv heads x ...)."""
        values = batch_size * config.n_kv_heads * (seq_len or config.max_seq_len) * config.head_dim
        return 2 * config.n_layers * values * bytes_per_value


class Attention(nn.Module):
    """Causal self-attention with rotary positions and ``n_kv_heads`` shared key/value heads."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = config.n_heads, config.n_kv_heads, config.head_dim
        self.wq = nn.Linear(config.dim, config.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(config.dim, config.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(config.dim, config.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(config.n_heads * self.head_dim, config.dim, bias=False)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: KVCache | None = None, layer: int = 0, start: int = 0) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(layer, start, k, v)
        rep = self.n_heads // self.n_kv_heads
        if rep > 1:  # query head h reads key/value head h // rep
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        mask, causal = None, T > 1 and start == 0
        if T > 1 and start > 0:  # a chunk after cached positions: see the past and the causal part
            mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(diagonal=start)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.resid_dropout(self.wo(y.transpose(1, 2).reshape(B, T, -1)))


class Block(nn.Module):
    """Pre-norm residual block: ``x + attention(norm(x))``, then ``x + feed_forward(norm(x))``."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.attention_norm = RMSNorm(config.dim, config.norm_eps)
        self.attention = Attention(config)
        self.ffn_norm = RMSNorm(config.dim, config.norm_eps)
        self.feed_forward = FeedForward(config.dim, config.hidden_dim, config.dropout)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: KVCache | None = None, layer: int = 0, start: int = 0) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin, cache, layer, start)
        return x + self.feed_forward(self.ffn_norm(x))


class Llama(nn.Module):
    """The Llama 2 transformer; ``forward(idx, targets=None)`` returns ``(logits, loss)``."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.dim, config.norm_eps)
        self.output = nn.Linear(config.dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        cos, sin = rope_frequencies(config.head_dim, config.max_seq_len, config.rope_theta)
        self.register_buffer("freqs_cos", cos, persistent=False)
        self.register_buffer("freqs_sin", sin, persistent=False)
        self.apply(self._init_weights)
        # the projections that write into the residual stream start smaller (GPT-2's scheme)
        for name, p in self.named_parameters():
            if name.endswith(("attention.wo.weight", "feed_forward.w2.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Number of distinct parameters (a tied output matrix counts once)."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward): ``6 * params + 12 * layers * dim * seq``."""
        T = seq_len or self.config.max_seq_len
        return 6 * self.num_params() + 12 * self.config.n_layers * self.config.dim * T

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None, start: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits ``(B, T, vocab)`` for tokens ``idx`` at positions ``start..start+T-1``.

        With ``targets`` the loss is the mean cross-entropy (``-1`` targets are ignored). With a
        ``cache`` the keys and values are stored for the following calls.
        """
        B, T = idx.shape
        if start + T > self.config.max_seq_len:
            raise ValueError(f"positions up to {start + T} exceed max_seq_len={self.config.max_seq_len}")
        x = self.dropout(self.tok_embeddings(idx))
        cos, sin = self.freqs_cos[start:start + T], self.freqs_sin[start:start + T]
        for i, block in enumerate(self.layers):
            x = block(x, cos, sin, cache, i, start)
        logits = self.output(self.norm(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1),
                                   ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None,
                 use_cache: bool = True, stop_token: int | None = None) -> torch.Tensor:
        """Sample ``max_new_tokens`` after ``idx`` (``B, T``); returns ``(B, T + new)``.

        ``temperature=0`` picks the most likely token. With ``use_cache`` each step runs only the
        new token through the model and reads earlier keys and values from a ``KVCache``;
        without it each step reruns the whole sequence. Both give the same tokens. Generation
        stops early once every row has produced ``stop_token``. Runs in eval mode (no dropout).
        """
        if idx.shape[1] + max_new_tokens > self.config.max_seq_len:
            raise ValueError(f"{idx.shape[1]} prompt + {max_new_tokens} new tokens exceed "
                             f"max_seq_len={self.config.max_seq_len}")
        dtype = self.output.weight.dtype
        cache = KVCache(self.config, idx.shape[0], idx.device, dtype) if use_cache else None
        done = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        was_training = self.training
        self.eval()
        start, step_input = 0, idx
        for _ in range(max_new_tokens):
            if cache is not None:
                logits, _ = self(step_input, cache=cache, start=start)
                start += step_input.shape[1]
            else:
                logits, _ = self(idx)
            nxt = sample(logits[:, -1, :], temperature, top_k, generator)
            idx = torch.cat((idx, nxt), dim=1)
            step_input = nxt
            if stop_token is not None:
                done |= nxt.squeeze(1) == stop_token
                if bool(done.all()):
                    break
        self.train(was_training)
        return idx


def sample(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row from ``logits`` (``B, vocab``); returns ``(B, 1)``."""
    if temperature == 0.0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)
