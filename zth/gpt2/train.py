"""Train GPT-2 on token shards: ``python -m zth.gpt2.train --preset tiny --data DIR``.

One process, or one per device under ``torchrun``::

    python -m zth.gpt2.train --preset tiny --data runs/shakespeare --out runs/tiny
    torchrun --standalone --nproc_per_node=8 -m zth.gpt2.train --preset gpt2-124m \\
        --data fineweb10B --out runs/gpt2-124m --set compile=true

``--data`` is a folder of shards from ``python -m zth.gpt2.prepare``. Presets hold the
lecture's hyperparameters (``gpt2-124m``) or a model that trains on a CPU in minutes
(``tiny``); ``--set KEY=VALUE`` overrides any field. The loop is ``zth.train.Trainer``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import torch

from zth.gpt2.model import GPT2, GPT2Config
from zth.train import RunConfig, TokenStream, TrainConfig, Trainer, TrainResult
from zth.train.cli import TrainCommand
from zth.train.ddp import init_distributed

__all__ = ["COMMAND", "GPT2_VOCAB", "PRESETS", "ShardData", "main", "sample_hook"]

GPT2_VOCAB = 50257  # tokens of tiktoken's "gpt2" encoding (the model may pad beyond it)


@dataclass
class ShardData:
    """Where the token shards are and how HellaSwag is scored at each evaluation."""

    data_dir: str = ""  # a folder of *_train_*.npy and *_val_*.npy shards (--data)
    hellaswag: str = "auto"  # auto (official file if present, else the derived copy), official, derived, off
    hellaswag_limit: int = 0  # score the first N examples; 0: all

    def __post_init__(self) -> None:
        if self.hellaswag not in ("auto", "official", "derived", "off"):
            raise ValueError(f"hellaswag must be auto, official, derived or off, got {self.hellaswag!r}")
        if self.hellaswag_limit < 0:
            raise ValueError("hellaswag_limit must be >= 0")


PRESETS: dict[str, RunConfig] = {
    # the lecture's run: 10B tokens of FineWeb-Edu, 2**19 tokens per step, vocabulary padded to 50,304
    "gpt2-124m": RunConfig(GPT2Config(vocab_size=50304), TrainConfig(
        total_batch_tokens=524_288, batch_size=64, seq_len=1024, max_steps=19_073, lr=6e-4, min_lr=6e-5,
        warmup_steps=715, weight_decay=0.1, eval_interval=250, eval_steps=20, checkpoint_interval=5000,
        log_interval=1), ShardData()),
    # a couple of minutes on two idle CPU cores; GPT-2's tokenizer and padded vocabulary
    "tiny": RunConfig(
        GPT2Config(block_size=128, vocab_size=50304, n_layer=4, n_head=4, n_embd=64),
        TrainConfig(total_batch_tokens=1024, batch_size=4, seq_len=128, max_steps=80, lr=3e-3, min_lr=3e-4,
                    warmup_steps=8, weight_decay=0.1, eval_interval=20, eval_steps=8, log_interval=1),
        ShardData(hellaswag_limit=100)),
}


def sample_hook(n: int, tokens: int, prompt: str = "Hello, I'm a language model,"):
    """A ``Trainer`` eval hook that samples ``n`` continuations of ``prompt`` on rank 0."""
    from zth.data import tiktoken_encoding

    enc = tiktoken_encoding("gpt2")

    def hook(trainer: Trainer) -> dict:
        if not trainer.dist.master:
            return {}
        model, device = trainer.raw_model, trainer.dist.device
        idx = torch.tensor([enc.encode(prompt)] * n, device=device)
        gen = torch.Generator(device=device).manual_seed(trainer.config.train.seed + trainer.step)
        with trainer.autocast():
            out = model.generate(idx, tokens, top_k=50, generator=gen, vocab_limit=GPT2_VOCAB)
        return {"samples": [enc.decode(row) for row in out.tolist()]}

    return hook


def _add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data", metavar="DIR", help="folder of *_train_*.npy and *_val_*.npy shards (data_dir)")
    ap.add_argument("--init-from", metavar="PATH", help="start from GPT-2 weights in HuggingFace format")
    ap.add_argument("--samples", type=int, default=0, help="sample N continuations at each evaluation")
    ap.add_argument("--sample-tokens", type=int, default=32)
    ap.add_argument("--peak-tflops", type=float, help="the device's peak for MFU (CPUs, unlisted GPUs)")


def _run(cfg: RunConfig, args: argparse.Namespace, command: str) -> TrainResult | None:
    data_dir = args.data or cfg.data.data_dir
    if not data_dir:
        raise ValueError("name the token shards: --data DIR (from python -m zth.gpt2.prepare)")
    tc, dist = cfg.train, init_distributed(cfg.train.device)
    torch.manual_seed(tc.seed)  # the same initial weights on every rank
    if args.init_from:
        model = GPT2.from_pretrained(args.init_from, flash=cfg.model.flash, dropout=cfg.model.dropout)
        cfg = RunConfig(model.config, tc, cfg.data)
    else:
        model = GPT2(cfg.model)
    shape = (tc.batch_size, tc.seq_len, dist.rank, dist.world_size)
    train = TokenStream.from_dir(data_dir, "train", *shape)
    val = TokenStream.from_dir(data_dir, "val", *shape)
    evals = []
    if cfg.data.hellaswag != "off":
        from zth.gpt2.hellaswag import hellaswag_hook

        evals.append(hellaswag_hook(cfg.data.hellaswag_limit or None, cfg.data.hellaswag))
    if args.samples:
        evals.append(sample_hook(args.samples, args.sample_tokens))
    trainer = Trainer(model, cfg, train, {"val": val}, evals, dist, args.out,
                      peak=args.peak_tflops * 1e12 if args.peak_tflops else None,
                      log=None if args.quiet else print, command=command, preset=args.preset)
    trainer.say(f"{model.num_params():,} parameters | {trainer.grad_accum_steps} accumulation steps x "
                 f"{dist.world_size} processes | device {dist.device}")
    result = trainer.train(resume=args.resume)
    return result if dist.master else None


COMMAND = TrainCommand("python -m zth.gpt2.train", "Train GPT-2 on token shards (one process, or one per GPU "
                       "under torchrun).", PRESETS, "tiny", _run, _add_arguments)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The training command; returns the exit status (0, 2 on bad input, 130 when stopped)."""
    return COMMAND.main(argv, prog)


if __name__ == "__main__":
    sys.exit(main())
