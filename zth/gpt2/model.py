"""GPT-2: the model of "Let's reproduce GPT-2 (124M)", with HuggingFace's module names.

The module tree is ``transformer.{wte, wpe, h.N.{ln_1, attn.{c_attn, c_proj}, ln_2,
mlp.{c_fc, c_proj}}, ln_f}`` plus ``lm_head``, whose weight is tied to ``transformer.wte``.
Linear layers are ``nn.Linear`` (``out x in``); HuggingFace's ``Conv1D`` stores the transpose,
which ``zth.gpt2.hf`` handles when loading or saving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPT2Config:
    """Shape of a GPT-2. Defaults are the 124M model with GPT-2's 50,257-token vocabulary."""

    block_size: int = 1024  # maximum sequence length (HF: n_positions)
    vocab_size: int = 50257
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5
    flash: bool = True  # attention through F.scaled_dot_product_attention; False: explicit softmax

    def __post_init__(self) -> None:
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) <= 0:
                raise ValueError(f"GPT2Config.{name} must be positive, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")

    @classmethod
    def from_name(cls, name: str, **overrides) -> GPT2Config:
        """The published sizes: ``gpt2`` (124M), ``gpt2-medium``, ``gpt2-large``, ``gpt2-xl``."""
        sizes = {"gpt2": (12, 12, 768), "gpt2-medium": (24, 16, 1024),
                 "gpt2-large": (36, 20, 1280), "gpt2-xl": (48, 25, 1600)}
        if name not in sizes:
            raise ValueError(f"unknown GPT-2 size {name!r}; known: {', '.join(sizes)}")
        n_layer, n_head, n_embd = sizes[name]
        return cls(n_layer=n_layer, n_head=n_head, n_embd=n_embd, **overrides)

    def padded(self, multiple: int = 128) -> GPT2Config:
        """A copy whose vocabulary is rounded up to ``multiple`` (50,257 -> 50,304)."""
        return replace(self, vocab_size=-(-self.vocab_size // multiple) * multiple)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one ``c_attn`` for q, k, v and an output ``c_proj``."""

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        p = self.dropout if self.training else 0.0
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        else:  # the lecture's first version: materialize the (T, T) attention matrix
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(dim=-1)
            y = F.dropout(att, p) @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: ``c_fc`` (4x wider), GELU (tanh approximation), ``c_proj``."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.c_proj.RESIDUAL_SCALE_INIT = True
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm Transformer block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    """GPT-2 language model. ``model(idx, targets=None)`` returns ``(logits, loss)``."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """GPT-2's init: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer), zero biases."""
        if isinstance(module, nn.Linear):
            std = 0.02
            if getattr(module, "RESIDUAL_SCALE_INIT", False):
                std *= (2 * self.config.n_layer) ** -0.5
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits ``(B, T, vocab)``; with ``targets`` also the mean cross-entropy (``-1`` ignored)."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} exceeds block_size {self.config.block_size}")
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

    def num_params(self, non_embedding: bool = False) -> int:
        """Number of parameters (the tied ``wte``/``lm_head`` counted once).

        ``non_embedding=True`` leaves out the position embeddings, as FLOP estimates do.
        """
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward), PaLM's estimate ``6N + 12 L C T``."""
        c, T = self.config, seq_len or self.config.block_size
        return 6 * self.num_params(non_embedding=True) + 12 * c.n_layer * c.n_embd * T

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = 50, generator: torch.Generator | None = None,
                 vocab_limit: int | None = None) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` ``(B, T)``.

        Sampling keeps the ``top_k`` most likely tokens (``top_k=1`` is greedy decoding) and
        draws from ``generator`` when given, so a seeded generator reproduces a sample.
        ``vocab_limit`` forbids ids at or above it (the padding of a padded vocabulary).
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        was_training = self.training
        self.eval()
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.config.block_size:])
            logits = logits[:, -1, :].float() / temperature
            if vocab_limit is not None:
                logits[:, vocab_limit:] = float("-inf")
            if top_k is not None:
                logits, candidates = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1)
            probs = logits.softmax(dim=-1)
            choice = torch.multinomial(probs, 1, generator=generator)
            nxt = candidates.gather(-1, choice) if top_k is not None else choice
            idx = torch.cat([idx, nxt], dim=1)
        self.train(was_training)
        return idx

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> GPT2:
        """The model a ``zth.train`` checkpoint holds (a run folder means its ``best.pt``), in eval mode."""
        from zth.storage import CheckpointError
        from zth.train.checkpoint import load_checkpoint, load_state

        ckpt = load_checkpoint(path)
        try:
            model = cls(GPT2Config(**ckpt["config"]["model"]))
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path} is not a checkpoint of a GPT-2 ({e})") from None
        load_state(model, ckpt["model"], str(path))
        return model.eval()

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, **overrides) -> GPT2:
        """Load GPT-2 weights in HuggingFace format (a local directory or a hub name)."""
        from zth.gpt2.hf import load_pretrained

        return load_pretrained(cls, name_or_path, **overrides)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` that ``transformers.GPT2LMHeadModel`` loads."""
        from zth.gpt2.hf import save_pretrained

        return save_pretrained(self, path)
