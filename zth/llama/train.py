"""Train a small Llama on TinyStories with the GPT-2 training loop: ``python -m zth.llama.train``.

There is no second training loop here: ``zth.gpt2.trainer.Trainer`` (AdamW with decay on 2-D
parameters, warmup + cosine schedule, gradient accumulation, clipping, DDP, checkpoints, the
JSON-lines metrics log) trains any model whose ``forward(idx, targets)`` returns
``(logits, loss)``; this module only supplies the data, the tokenizer and the presets::

    python -m zth.llama.train --out runs/stories260K --export runs/stories260K/model.bin
    torchrun --standalone --nproc_per_node=2 -m zth.llama.train --out runs/s260K  # DDP
    python -m zth.llama.train --out runs/stories260K --max-steps 2000 --resume  # continue

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

from zth.data import DataError, text
from zth.gpt2.cli import ArgumentParser, add_dataclass_options, apply_overrides
from zth.gpt2.ddp import cleanup_distributed, init_distributed
from zth.gpt2.shards import ShardLoader
from zth.gpt2.trainer import TrainConfig, Trainer
from zth.llama.model import PRESETS as MODEL_PRESETS
from zth.llama.model import Llama, LlamaConfig
from zth.llama.tokenizer import BOS, StoryTokenizer
from zth.storage import CheckpointError

__all__ = ["PRESETS", "Stories", "cut_at_bos", "main", "prepare_stories", "split_stories", "story_sampler",
           "train_llama"]

PRESETS: dict[str, tuple[LlamaConfig, TrainConfig]] = {
    # llama2.c's 260K shape with a 256-token context and an untied output matrix (292,800
    # parameters), which learns much faster in a short run; about two minutes of one CPU core
    "stories260K": (replace(MODEL_PRESETS["stories260K"], max_seq_len=256, tie_embeddings=False),
                    TrainConfig(total_batch_tokens=2048, micro_batch=8, seq_len=256, max_steps=400,
                                max_lr=1e-2, min_lr=1e-3, warmup_steps=10, weight_decay=0.1,
                                eval_interval=100, eval_steps=8, checkpoint_interval=0, print_interval=100)),
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
        gen = torch.Generator(device=device).manual_seed(trainer.config.seed + trainer.step)
        start = torch.full((n, 1), BOS, dtype=torch.long, device=device)
        steps = min(max_new_tokens, model.config.max_seq_len - 1)
        out = model.generate(start, steps, temperature, top_k, gen, stop_token=BOS)
        return {"samples": [tokenizer.decode(cut_at_bos(row)) for row in out.tolist()]}
    return hook


def cut_at_bos(ids: list[int]) -> list[int]:
    """``ids`` up to (not including) the first BOS after the first token: one story."""
    return ids[:1 + ids[1:].index(BOS)] if BOS in ids[1:] else ids


def train_llama(model_config: LlamaConfig, train_config: TrainConfig, data: Stories,
                evals=(), log=print, resume: bool = False) -> tuple[Llama, Trainer]:
    """Build a ``Llama`` (seeded by ``train_config.seed``) and train it on ``data``; returns both.

    ``resume=True`` continues from the latest checkpoint in ``train_config.out_dir``.
    """
    if data.tokenizer.vocab_size > model_config.vocab_size:
        raise ValueError(f"the tokenizer has {data.tokenizer.vocab_size} ids but the model only "
                         f"{model_config.vocab_size}")
    dist = init_distributed(train_config.device)
    torch.manual_seed(train_config.seed)  # the same initial weights on every rank
    model = Llama(model_config)
    shape = (train_config.micro_batch, train_config.seq_len, dist.rank, dist.world_size)
    trainer = Trainer(model, ShardLoader([data.train], *shape), train_config,
                      val_data=ShardLoader([data.val], *shape), evals=evals, dist=dist, log=log)
    trainer.train(resume=resume)
    return model, trainer


def build_parser() -> argparse.ArgumentParser:
    """The command line: a preset, where to write, and every ``TrainConfig`` and ``LlamaConfig``
    field as an override of the preset."""
    ap = ArgumentParser(prog="python -m zth.llama.train", description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="stories260K")
    ap.add_argument("--out", help="folder for metrics.jsonl, checkpoints and the tokenizer")
    ap.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    ap.add_argument("--export", help="write the trained model here in llama2.c format (and tokenizer.bin)")
    ap.add_argument("--version", type=int, choices=(0, 1), default=0,
                    help="llama2.c file version: 0 (legacy, what llama2.c's run.c reads) or 1")
    ap.add_argument("--samples", type=int, default=0, help="sample N stories at each evaluation")
    add_dataclass_options(ap, TrainConfig, LlamaConfig, skip=("out_dir",))
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input)."""
    from zth.llama.llama2c import export_llama2c, write_tokenizer_bin

    args = build_parser().parse_args(argv)
    try:
        model_cfg, train_cfg = (apply_overrides(c, args) for c in PRESETS[args.preset])
        train_cfg = replace(train_cfg, out_dir=args.out)
        data = prepare_stories(model_cfg.vocab_size)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            data.tokenizer.save(Path(args.out) / "tokenizer")
        evals = [story_sampler(data.tokenizer, args.samples)] if args.samples else []
        model, trainer = train_llama(model_cfg, train_cfg, data, evals, resume=args.resume)
        if args.export and trainer.dist.master:
            size = export_llama2c(model, args.export, version=args.version)
            tok_path = Path(args.export).with_name("tokenizer.bin")
            write_tokenizer_bin(tok_path, *data.tokenizer.pieces())
            print(f"wrote {args.export} ({size:,} bytes) and {tok_path}")
    except (ValueError, CheckpointError, DataError, OSError) as e:
        print(f"zth.llama.train: error: {e}", file=sys.stderr)
        return 2
    finally:
        cleanup_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
