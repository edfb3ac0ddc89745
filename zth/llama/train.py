"""Train a small Llama on TinyStories with the GPT-2 training loop: ``python -m zth.llama.train``.

There is no second training loop here: ``zth.train.Trainer`` (AdamW with decay on 2-D
parameters, warmup + cosine schedule, gradient accumulation, clipping, DDP, checkpoints, the
JSON-lines metrics log) trains any model whose ``forward(idx, targets)`` returns
``(logits, loss)``; this module only supplies the data, the tokenizer and the presets::

    python -m zth.llama.train --out runs/stories260K --export runs/stories260K/model.bin
    torchrun --standalone --nproc_per_node=2 -m zth.llama.train --out runs/s260K  # DDP
    python -m zth.llama.train --out runs/stories260K --set max_steps=2000 --resume  # continue

The tokenizer is a byte-level BPE trained by ``zth.tokenizer`` on the training text (512 ids, as
llama2.c's 260K model); training stories each start with BOS (the sample separates stories by a
single newline); the validation sample marks no story boundaries and is one stream.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from zth.data import text
from zth.llama.model import PRESETS as MODEL_PRESETS
from zth.llama.model import Llama
from zth.llama.tokenizer import BOS, StoryTokenizer
from zth.train import RunConfig, TokenStream, TrainConfig, Trainer, TrainResult
from zth.train.cli import TrainCommand
from zth.train.ddp import init_distributed

__all__ = ["COMMAND", "PRESETS", "Stories", "StoryData", "cut_at_bos", "main", "prepare_stories",
           "split_stories", "story_sampler", "train_llama"]


@dataclass
class StoryData:
    """Which texts to train and validate on (names in ``zth.data``)."""

    train_text: str = "tinystories_train"
    val_text: str = "tinystories_valid"


PRESETS: dict[str, RunConfig] = {
    # llama2.c's 260K shape with a 256-token context and an untied output matrix (292,800
    # parameters), which learns much faster in a short run; about two minutes of one CPU core.
    # Measured at this budget (400 steps of 2,048 tokens): a 50-step warmup and a cosine down to
    # 1e-4 reach val 3.03, against 3.15 with 10 steps of warmup and a floor of 1e-3
    "stories260K": RunConfig(replace(MODEL_PRESETS["stories260K"], max_seq_len=256, tie_embeddings=False),
                             TrainConfig(total_batch_tokens=2048, batch_size=8, seq_len=256, max_steps=400,
                                         lr=1e-2, min_lr=1e-4, warmup_steps=50, weight_decay=0.1,
                                         eval_interval=100, eval_steps=8, log_interval=100), StoryData()),
}


@dataclass
class Stories:
    """A tokenizer and the token ids of the training and validation text (uint16)."""

    tokenizer: StoryTokenizer
    train: np.ndarray
    val: np.ndarray


def split_stories(s: str) -> list[str]:
    """Split the TinyStories training sample into stories: they are separated by a single newline
    (paragraphs inside a story by a blank line)."""
    return [story for story in re.split(r"(?<!\n)\n(?!\n)", s) if story.strip()]


def prepare_stories(vocab_size: int = 512, train_name: str = "tinystories_train",
                    val_name: str = "tinystories_valid", tokenizer: StoryTokenizer | None = None) -> Stories:
    """Train a tokenizer on ``train_name`` (unless given) and tokenize both datasets of ``zth.data``."""
    train_text = text(train_name)
    tok = tokenizer or StoryTokenizer.train(train_text, vocab_size)
    train = np.array([i for story in split_stories(train_text) for i in tok.encode(story)], dtype=np.uint16)
    val = np.array(tok.encode(text(val_name)), dtype=np.uint16)
    return Stories(tok, train, val)


def story_sampler(tokenizer: StoryTokenizer, n: int = 2, max_new_tokens: int = 200,
                  temperature: float = 1.0, top_k: int | None = None):
    """A ``Trainer`` eval hook that samples ``n`` stories from BOS on rank 0 (seeded by the step)."""
    def hook(trainer: Trainer) -> dict:
        if not trainer.dist.master:
            return {}
        model, device = trainer.raw_model, trainer.dist.device
        gen = torch.Generator(device=device).manual_seed(trainer.config.train.seed + trainer.step)
        start = torch.full((n, 1), BOS, dtype=torch.long, device=device)
        steps = min(max_new_tokens, model.config.max_seq_len - 1)
        out = model.generate(start, steps, temperature, top_k, gen, stop_token=BOS)
        return {"samples": [tokenizer.decode(cut_at_bos(row)) for row in out.tolist()]}
    return hook


def cut_at_bos(ids: list[int]) -> list[int]:
    """``ids`` up to (not including) the first BOS after the first token: one story."""
    return ids[:1 + ids[1:].index(BOS)] if BOS in ids[1:] else ids


def train_llama(cfg: RunConfig, data: Stories, out: str | Path | None = None, evals=(), log=print,
                resume: bool = False, command: str | None = None, preset: str | None = None
                ) -> tuple[Llama, TrainResult]:
    """Build a ``Llama`` (seeded by ``cfg.train.seed``) and train it on ``data``; returns both.

    ``resume=True`` continues from ``out/last.pt``.
    """
    model_config, tc = cfg.model, cfg.train
    if data.tokenizer.vocab_size > model_config.vocab_size:
        raise ValueError(f"the tokenizer has {data.tokenizer.vocab_size} ids but the model only "
                         f"{model_config.vocab_size}")
    dist = init_distributed(tc.device)
    torch.manual_seed(tc.seed)  # the same initial weights on every rank
    model = Llama(model_config)
    shape = (tc.batch_size, tc.seq_len, dist.rank, dist.world_size)
    trainer = Trainer(model, cfg, TokenStream([data.train], *shape), {"val": TokenStream([data.val], *shape)},
                      evals, dist, out, log=log, command=command, preset=preset)
    return model, trainer.train(resume=resume)


def _add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--export", metavar="PATH", help="write the trained model here in llama2.c format "
                    "(and tokenizer.bin beside it)")
    ap.add_argument("--version", type=int, choices=(0, 1), default=0,
                    help="llama2.c file version: 0 (legacy, what llama2.c's run.c reads) or 1")
    ap.add_argument("--samples", type=int, default=0, help="sample N stories at each evaluation")


def _run(cfg: RunConfig, args: argparse.Namespace, command: str) -> TrainResult | None:
    from zth.llama.llama2c import export_llama2c, write_tokenizer_bin

    data = prepare_stories(cfg.model.vocab_size, cfg.data.train_text, cfg.data.val_text)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        data.tokenizer.save(Path(args.out) / "tokenizer")
    evals = [story_sampler(data.tokenizer, args.samples)] if args.samples else []
    model, result = train_llama(cfg, data, args.out, evals, None if args.quiet else print, args.resume,
                                command, args.preset)
    if args.export and (not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0):
        size = export_llama2c(model, args.export, version=args.version)
        tok_path = Path(args.export).with_name("tokenizer.bin")
        write_tokenizer_bin(tok_path, *data.tokenizer.pieces())
        print(f"wrote {args.export} ({size:,} bytes) and {tok_path}")
    return result


COMMAND = TrainCommand("python -m zth.llama.train", "Train a small Llama 2 on TinyStories.", PRESETS,
                       "stories260K", _run, _add_arguments)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The training command; returns the exit status (0, 2 on bad input, 130 when stopped)."""
    return COMMAND.main(argv, prog)


if __name__ == "__main__":
    sys.exit(main())
