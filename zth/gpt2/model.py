"""GPT-2: the model of "Let's reproduce GPT-2 (124M)", with HuggingFace's module names.

The module tree is ``transformer.{wte, wpe, h.N.{ln_1, attn.{c_attn, c_proj}, ln_2,
mlp.{c_fc, c_proj}}, ln_f}`` plus ``lm_head``, whose weight is tied to ``transformer.wte``.
Linear layers are ``nn.Linear`` (``out x in``); HuggingFace's ``Conv1D`` stores the transpose,
which ``zth.gpt2.hf`` handles when loading or saving.

Switches in ``GPT2Config``, all off by default (off: the Lecture 9 model, weight for weight),
turn on the changes that came after GPT-2 (Chapter 11): rotary position embeddings (``rope``),
RMSNorm (``rmsnorm``), QK-norm (``qk_norm``), ReLU² or SwiGLU MLPs (``mlp``), an untied output
head (``untied_head``), zero-initialised output projections (``zero_init``) and logit
soft-capping (``softcap``). Each lives in the module that owns it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn import functional as F

from zth.gpt.model import Rotary  # Lecture 7's rotary embedding (Chapter 7, EX4)

MLP_KINDS = ("gelu", "relu", "relu2", "swiglu")


@dataclass
class GPT2Config:
    """Shape of a GPT-2. Defaults are the 124M model with GPT-2's 50,257-token vocabulary.

    The fields after ``flash`` are the modern switches of Chapter 11; their defaults are GPT-2's.
    """

    block_size: int = 1024  # maximum sequence length (HF: n_positions)
    vocab_size: int = 50257
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5
    flash: bool = True  # attention through F.scaled_dot_product_attention; False: explicit softmax
    # modern switches (Chapter 11); the defaults are GPT-2's
    rope: bool = False  # rotary position embeddings on q and k instead of the learned table wpe
    rmsnorm: bool = False  # RMSNorm (torch.nn.RMSNorm) instead of LayerNorm in ln_1, ln_2, ln_f
    qk_norm: bool = False  # RMSNorm of each head's queries and keys before the attention scores
    mlp: str = "gelu"  # the MLP: "gelu" (GPT-2), "relu" (Lecture 7's), "relu2" (squared) or "swiglu" (gated)
    untied_head: bool = False  # lm_head gets its own weights instead of sharing wte's
    zero_init: bool = False  # the output projections (attn.c_proj, mlp.c_proj) start at zero
    softcap: float = 0.0  # logits -> softcap * tanh(logits / softcap); 0: no capping

    def __post_init__(self) -> None:
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) <= 0:
                raise ValueError(f"GPT2Config.{name} must be positive, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.rope and (self.n_embd // self.n_head) % 2:
            raise ValueError("rope needs an even head size (n_embd / n_head)")
        if self.mlp not in MLP_KINDS:
            raise ValueError(f"mlp must be one of {', '.join(MLP_KINDS)}, got {self.mlp!r}")
        if not (math.isfinite(self.softcap) and self.softcap >= 0):
            raise ValueError(f"softcap must be >= 0 (0: off), got {self.softcap}")

    def modern_switches(self) -> list[str]:
        """The Chapter 11 switches that are on (empty: the Lecture 9 model)."""
        on = [n for n in ("rope", "rmsnorm", "qk_norm", "untied_head", "zero_init") if getattr(self, n)]
        return on + ([f"mlp={self.mlp}"] if self.mlp != "gelu" else []) + \
            ([f"softcap={self.softcap:g}"] if self.softcap else [])

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


def norm(config: GPT2Config, dim: int | None = None) -> nn.Module:
    """GPT-2's LayerNorm, or with ``rmsnorm`` an RMSNorm (no mean subtraction, no bias)."""
    dim = dim or config.n_embd
    if config.rmsnorm:
        return nn.RMSNorm(dim, eps=config.layer_norm_epsilon)
    return nn.LayerNorm(dim, eps=config.layer_norm_epsilon)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one ``c_attn`` for q, k, v and an output ``c_proj``.

    ``qk_norm`` RMS-normalises each head's queries and keys (learned gains ``q_norm``, ``k_norm``);
    ``rope`` then rotates them by their positions (``rotary``), in place of GPT-2's ``wpe``.
    """

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
        head_size = config.n_embd // config.n_head
        if config.qk_norm:
            self.q_norm = nn.RMSNorm(head_size, eps=config.layer_norm_epsilon)
            self.k_norm = nn.RMSNorm(head_size, eps=config.layer_norm_epsilon)
        self.qk_norm = config.qk_norm
        self.rotary = Rotary(head_size, config.block_size) if config.rope else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head) for t in (q, k, v))  # (B, T, nh, head_size)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, n_head, T, head_size)
        p = self.dropout if self.training else 0.0
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        else:  # the lecture's first version: materialize the (T, T) attention matrix
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(dim=-1)
            y = F.dropout(att, p) @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


def swiglu_width(n_embd: int) -> int:
    """SwiGLU's hidden width: 8/3 of ``n_embd`` (rounded up to a multiple of 8), so that its three
    matrices hold as many weights as GPT-2's two of width 4 x ``n_embd``."""
    return -(-8 * n_embd // 3 // 8) * 8


class MLP(nn.Module):
    """Position-wise feed-forward: ``c_fc`` (4x wider), GELU (tanh approximation), ``c_proj``.

    ``mlp="relu"`` replaces GELU by Lecture 7's ReLU (the cheapest on a CPU), ``mlp="relu2"`` by
    ReLU squared; ``mlp="swiglu"`` makes ``c_fc`` produce a gate
    and a value of width ``swiglu_width`` each and multiplies ``silu(gate)`` into the value.
    """

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.kind = config.mlp
        hidden = swiglu_width(config.n_embd) if self.kind == "swiglu" else 4 * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, 2 * hidden if self.kind == "swiglu" else hidden)
        if self.kind == "gelu":
            self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(hidden, config.n_embd)
        self.c_proj.RESIDUAL_SCALE_INIT = True
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c_fc(x)  # (B, T, hidden), or (B, T, 2 hidden) for SwiGLU
        if self.kind == "gelu":
            h = self.gelu(h)
        elif self.kind == "relu":
            h = F.relu(h)
        elif self.kind == "relu2":
            h = F.relu(h).square()
        else:  # swiglu
            gate, value = h.chunk(2, dim=-1)  # (B, T, hidden) each
            h = F.silu(gate) * value
        return self.dropout(self.c_proj(h))


class Block(nn.Module):
    """Pre-norm Transformer block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.ln_1 = norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = norm(config)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    """GPT-2 language model. ``model(idx, targets=None)`` returns ``(logits, loss)``.

    With ``rope`` there is no ``wpe``; with ``untied_head`` ``lm_head`` has weights of its own;
    with ``softcap`` the logits are squashed into ``(-softcap, softcap)``.
    """

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            **({} if config.rope else dict(wpe=nn.Embedding(config.block_size, config.n_embd))),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=norm(config),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if not config.untied_head:
            self.lm_head.weight = self.transformer.wte.weight  # weight tying
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """GPT-2's init: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer), zero biases.

        With ``zero_init`` the residual projections start at zero: every block is the identity.
        """
        if isinstance(module, nn.Linear):
            std = 0.02
            if getattr(module, "RESIDUAL_SCALE_INIT", False):
                std *= (2 * self.config.n_layer) ** -0.5
            if getattr(module, "RESIDUAL_SCALE_INIT", False) and self.config.zero_init:
                nn.init.zeros_(module.weight)
            else:
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
        x = self.transformer.wte(idx)  # (B, T, C)
        if not self.config.rope:  # rotary embeddings act on q and k inside attention instead
            x = x + self.transformer.wpe(torch.arange(T, device=idx.device))  # (T, C) broadcast over B
        x = self.transformer.drop(x)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, vocab)
        if self.config.softcap:
            logits = self.config.softcap * torch.tanh(logits / self.config.softcap)
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
        wpe = getattr(self.transformer, "wpe", None)
        return n - wpe.weight.numel() if non_embedding and wpe is not None else n

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

        if self.config.modern_switches():
            raise ValueError(f"HuggingFace's GPT-2 has no {', '.join(self.config.modern_switches())}; "
                             "only the Lecture 9 model can be saved in its format")
        return save_pretrained(self, path)
