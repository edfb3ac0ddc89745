"""The lecture's models: the bigram baseline and the decoder-only Transformer (GPT).

The layout and the names follow the lecture's ``gpt.py``: ``Head``, ``MultiHeadAttention``,
``FeedForward``, ``Block`` (pre-LayerNorm, residual connections), token and position
embeddings, a final LayerNorm and ``lm_head``. ``CausalSelfAttention`` computes all the heads
of ``MultiHeadAttention`` in one batched module (the lecture's first exercise); it holds the
same parameters, so a model can switch between the two and keep its weights. The switches in
``GPTConfig`` (``ffwd``, ``residual``, ``layernorm``) rebuild the lecture's intermediate
models, rung by rung; ``rope`` replaces the position table by rotary embeddings (Su et al.,
2021), one later paper's idea.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    """The model's shape. Defaults are the lecture's final configuration (10,788,929 parameters)."""

    vocab_size: int = 65
    block_size: int = 256  # the longest context the model sees
    n_embd: int = 384
    n_head: int = 6
    n_layer: int = 6
    dropout: float = 0.2
    fused_heads: bool = True  # all heads in one batched module (same parameters, same outputs)
    ffwd: bool = True  # a feed-forward layer after attention in each block
    residual: bool = True  # x + f(x) around attention and feed-forward
    layernorm: bool = True  # pre-LayerNorm inside blocks and a final LayerNorm
    rope: bool = False  # rotary position embeddings instead of a learned position table
    init_std: float = 0.02  # N(0, init_std) weights, zero biases; 0: PyTorch's default initialization

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_embd", "n_head", "n_layer"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.rope and (self.n_embd // self.n_head) % 2:
            raise ValueError("rope needs an even head size")
        if self.init_std < 0:
            raise ValueError(f"init_std must be non-negative, got {self.init_std}")

    def to_dict(self) -> dict:
        return asdict(self)


class BigramLanguageModel(nn.Module):
    """Each token reads the logits for the next token straight from a lookup table."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.token_embedding_table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.token_embedding_table(idx)  # (B, T, vocab_size)
        return logits, _loss(logits, targets)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T)."""
        return _generate(self, idx, max_new_tokens, None, temperature, top_k, generator)


class Head(nn.Module):
    """One head of causal self-attention, as in the lecture."""

    def __init__(self, n_embd: int, head_size: int, block_size: int, dropout: float = 0.0):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T): affinities
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))  # the future cannot talk
        wei = F.softmax(wei, dim=-1)
        wei = self.dropout(wei)
        v = self.value(x)  # (B, T, hs)
        return wei @ v  # (B, T, hs)


class MultiHeadAttention(nn.Module):
    """Several heads in parallel, concatenated, then projected back to ``n_embd``."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        hs = cfg.n_embd // cfg.n_head
        self.heads = nn.ModuleList(Head(cfg.n_embd, hs, cfg.block_size, cfg.dropout)
                                   for _ in range(cfg.n_head))
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([h(x) for h in self.heads], dim=-1)
        return self.dropout(self.proj(out))


class CausalSelfAttention(nn.Module):
    """``MultiHeadAttention`` with every head's key, query and value in one matrix each.

    ``key``, ``query`` and ``value`` are ``(n_embd, n_embd)`` matrices whose rows
    ``h·hs:(h+1)·hs`` are head ``h``'s; the heads become a batch dimension and run as one
    ``scaled_dot_product_attention`` (softmax of the causally masked, 1/sqrt(hs)-scaled scores).
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.dropout_p = cfg.n_head, cfg.dropout
        self.key = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.query = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.value = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = nn.Dropout(cfg.dropout)
        self.rope = Rotary(cfg.n_embd // cfg.n_head, cfg.block_size) if cfg.rope else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (m(x).view(B, T, self.n_head, C // self.n_head)  # (B, T, nh, hs)
                   for m in (self.query, self.key, self.value))
        if self.rope is not None:
            q, k = self.rope(q), self.rope(k)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs): the heads become a batch dim
        p = self.dropout_p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        y = y.transpose(1, 2).reshape(B, T, C)  # the heads side by side, as torch.cat does
        return self.dropout(self.proj(y))

    @torch.no_grad()
    def load_heads(self, mha: MultiHeadAttention) -> None:
        """Copy the weights of a ``MultiHeadAttention`` with as many heads into this module."""
        for name in ("key", "query", "value"):
            getattr(self, name).weight.copy_(torch.cat([getattr(h, name).weight for h in mha.heads]))
        self.proj.load_state_dict(mha.proj.state_dict())


class Rotary(nn.Module):
    """Rotary position embedding: rotate each pair of channels by an angle that grows with position.

    Read the pair ``(a, b)`` as the complex number ``a + ib``: rotating it by the angle ``θ`` is
    multiplying it by ``exp(iθ)`` (as RoFormer writes it, and Llama's code computes it). It acts on
    queries or keys laid out ``(B, T, n_head, head_size)``, before the heads are moved into the
    batch (elementwise work on this layout runs faster on a CPU than on the transposed one).
    """

    def __init__(self, head_size: int, block_size: int, base: float = 10000.0):
        super().__init__()
        inv_freq = base ** (-torch.arange(0, head_size, 2).float() / head_size)  # (hs/2,)
        angles = torch.outer(torch.arange(block_size).float(), inv_freq)  # (T, hs/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, nh, hs)
        T = x.shape[-3]
        cos, sin = self.cos[:T, None].float(), self.sin[:T, None].float()  # (T, 1, hs/2)
        if torch.compiler.is_compiling():  # the same product in real numbers: inductor fuses these ops
            a, b = x.float().unflatten(-1, (-1, 2)).unbind(-1)  # but generates no code for complex ones
            return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2).type_as(x)
        pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))  # (B, T, nh, hs/2): a + ib
        return torch.view_as_real(pairs * torch.complex(cos, sin)).flatten(-2).type_as(x)


class FeedForward(nn.Module):
    """A position-wise MLP: expand 4x, ReLU, project back."""

    def __init__(self, n_embd: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Block(nn.Module):
    """Communication (self-attention) then computation (feed-forward), pre-LayerNorm and residual."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.sa = CausalSelfAttention(cfg) if cfg.fused_heads else MultiHeadAttention(cfg)
        self.ffwd = FeedForward(cfg.n_embd, cfg.dropout) if cfg.ffwd else None
        self.ln1 = nn.LayerNorm(cfg.n_embd) if cfg.layernorm else nn.Identity()
        self.ln2 = nn.LayerNorm(cfg.n_embd) if cfg.layernorm and cfg.ffwd else nn.Identity()
        self.residual = cfg.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sa(self.ln1(x)) if self.residual else self.sa(self.ln1(x))
        if self.ffwd is not None:
            x = x + self.ffwd(self.ln2(x)) if self.residual else self.ffwd(self.ln2(x))
        return x


class GPT(nn.Module):
    """The decoder-only Transformer of the lecture: embeddings, ``n_layer`` blocks, LayerNorm, head."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.token_embedding_table = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.position_embedding_table = None if cfg.rope else nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.Sequential(*[Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd) if cfg.layernorm else nn.Identity()
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size)
        if cfg.init_std > 0:
            self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """The final lecture code's initialization: N(0, 0.02) weights, zero biases."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        """The number of parameters."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """``idx`` and ``targets``: (B, T) token ids, T ≤ block_size. Returns (logits, loss or None)."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
        x = self.token_embedding_table(idx)  # (B, T, C)
        if self.position_embedding_table is not None:
            x = x + self.position_embedding_table(torch.arange(T, device=idx.device))  # (T, C) broadcasts
        x = self.ln_f(self.blocks(x))
        logits = self.lm_head(x)  # (B, T, vocab_size)
        return logits, _loss(logits, targets)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T), reading at most block_size back."""
        return _generate(self, idx, max_new_tokens, self.config.block_size, temperature, top_k, generator)


def _loss(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    if targets is None:
        return None
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))


def _generate(model: nn.Module, idx: torch.Tensor, max_new_tokens: int, block_size: int | None,
              temperature: float, top_k: int | None, generator: torch.Generator | None) -> torch.Tensor:
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    was_training = model.training
    model.eval()
    for _ in range(max_new_tokens):
        idx_cond = idx if block_size is None else idx[:, -block_size:]  # crop the context
        logits, _ = model(idx_cond)
        logits = logits[:, -1, :].float() / temperature  # (B, vocab_size): the last position only
        if top_k is not None:
            v, _ = torch.topk(logits, min(top_k, logits.shape[-1]))
            logits = logits.masked_fill(logits < v[:, [-1]], float("-inf"))
        probs = F.softmax(logits, dim=-1)
        idx_next = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
        idx = torch.cat((idx, idx_next), dim=1)
    model.train(was_training)
    return idx


def fuse_heads(model: GPT) -> GPT:
    """A copy of a ``GPT`` built from ``MultiHeadAttention`` that uses ``CausalSelfAttention`` instead."""
    if model.config.fused_heads:
        raise ValueError("the model's heads are already fused")
    fused = GPT(replace(model.config, fused_heads=True))
    state = {k: v for k, v in model.state_dict().items() if ".sa." not in k}
    fused.load_state_dict(state, strict=False)
    for mine, theirs in zip(fused.blocks, model.blocks, strict=True):
        mine.sa.load_heads(theirs.sa)
    return fused.to(next(model.parameters()).device)


def count_params(cfg: GPTConfig) -> int:
    """Parameters of a ``GPT`` of this configuration."""
    return GPT(cfg).num_params()


__all__ = ["BigramLanguageModel", "Block", "CausalSelfAttention", "FeedForward", "GPT", "GPTConfig", "Head",
           "MultiHeadAttention", "Rotary", "count_params", "fuse_heads"]
