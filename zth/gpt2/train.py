"""Train GPT-2 on token shards: ``python -m zth.gpt2.train --preset tiny --data DIR``.

One process, or one per device under ``torchrun``::

    python -m zth.gpt2.train --preset tiny --data runs/shakespeare --out runs/tiny
    torchrun --standalone --nproc_per_node=8 -m zth.gpt2.train --preset gpt2-124m \\
        --data fineweb10B --out runs/gpt2-124m

``--data`` is a folder of shards from ``python -m zth.gpt2.prepare``. Presets hold the
lecture's hyperparameters (``gpt2-124m``) or a model that trains on a CPU in minutes
(``tiny``); any option overrides its preset.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields, replace

import torch

from zth.data import DataError
from zth.gpt2.cli import ArgumentParser
from zth.gpt2.ddp import cleanup_distributed, init_distributed
from zth.gpt2.model import GPT2, GPT2Config
from zth.gpt2.shards import ShardLoader
from zth.gpt2.trainer import TrainConfig, Trainer
from zth.storage import CheckpointError

GPT2_VOCAB = 50257  # tokens of tiktoken's "gpt2" encoding (the model may pad beyond it)

PRESETS: dict[str, tuple[GPT2Config, TrainConfig]] = {
    # the lecture's run: 10B tokens of FineWeb-Edu, 2**19 tokens per step, vocabulary padded to 50,304
    "gpt2-124m": (GPT2Config(vocab_size=50304),
                  TrainConfig(total_batch_tokens=524_288, micro_batch=64, seq_len=1024, max_steps=19_073,
                              max_lr=6e-4, min_lr=6e-5, warmup_steps=715, weight_decay=0.1,
                              eval_interval=250, eval_steps=20, checkpoint_interval=5000)),
    # a couple of minutes on two idle CPU cores; GPT-2's tokenizer and padded vocabulary
    "tiny": (GPT2Config(block_size=128, vocab_size=50304, n_layer=4, n_head=4, n_embd=64),
             TrainConfig(total_batch_tokens=1024, micro_batch=4, seq_len=128, max_steps=80,
                         max_lr=3e-3, min_lr=3e-4, warmup_steps=8, weight_decay=0.1,
                         eval_interval=20, eval_steps=8, checkpoint_interval=0, print_interval=10)),
}

HELLASWAG_LIMIT = {"gpt2-124m": None, "tiny": 100}  # default examples per evaluation


def build_parser() -> argparse.ArgumentParser:
    """The command line (every ``TrainConfig`` and ``GPT2Config`` field is an option)."""
    ap = ArgumentParser(prog="python -m zth.gpt2.train", description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--data", required=True, help="folder of *_train_*.npy and *_val_*.npy shards")
    ap.add_argument("--out", help="folder for metrics.jsonl and checkpoints")
    ap.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    ap.add_argument("--init-from", help="start from GPT-2 weights in HuggingFace format (folder or hub name)")
    ap.add_argument("--hellaswag", choices=["auto", "official", "derived", "off"], default="auto",
                    help="HellaSwag at each evaluation: official file if present, else the derived copy")
    ap.add_argument("--hellaswag-limit", type=int, default=None,
                    help="score only the first N examples (preset default: all for gpt2-124m, 100 for tiny)")
    ap.add_argument("--samples", type=int, default=0, help="sample N continuations at each evaluation")
    ap.add_argument("--sample-tokens", type=int, default=32)
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="device peak for MFU (CPUs, unknown GPUs)")
    for f in [*fields(TrainConfig), *fields(GPT2Config)]:
        if f.name == "out_dir":
            continue
        flag, kind = "--" + f.name.replace("_", "-"), str(f.type).split("|")[0].strip()
        if kind == "bool":
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            ap.add_argument(flag, type={"int": int, "float": float, "str": str}[kind], default=None)
    return ap


def configs(args: argparse.Namespace) -> tuple[GPT2Config, TrainConfig]:
    """The preset with the command line's overrides applied."""
    model_cfg, train_cfg = PRESETS[args.preset]
    given = {k: v for k, v in vars(args).items() if v is not None}
    model_cfg = replace(model_cfg, **{f.name: given[f.name] for f in fields(GPT2Config) if f.name in given})
    train_cfg = replace(train_cfg, **{f.name: given[f.name] for f in fields(TrainConfig) if f.name in given},
                        out_dir=args.out)
    return model_cfg, train_cfg


def sample_hook(n: int, tokens: int, prompt: str = "Hello, I'm a language model,"):
    """A ``Trainer`` eval hook that samples ``n`` continuations of ``prompt`` on rank 0."""
    import tiktoken

    enc = tiktoken.get_encoding("gpt2")

    def hook(trainer: Trainer) -> dict:
        if not trainer.dist.master:
            return {}
        model, device = trainer.raw_model, trainer.dist.device
        idx = torch.tensor([enc.encode(prompt)] * n, device=device)
        gen = torch.Generator(device=device).manual_seed(trainer.config.seed + trainer.step)
        with trainer.autocast():
            out = model.generate(idx, tokens, top_k=50, generator=gen, vocab_limit=GPT2_VOCAB)
        return {"samples": [enc.decode(row) for row in out.tolist()]}

    return hook


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input)."""
    args = build_parser().parse_args(argv)
    try:
        model_cfg, train_cfg = configs(args)
        dist = init_distributed(train_cfg.device)
        torch.manual_seed(train_cfg.seed)  # the same initial weights on every rank
        if args.init_from:
            model = GPT2.from_pretrained(args.init_from, flash=model_cfg.flash, dropout=model_cfg.dropout)
        else:
            model = GPT2(model_cfg)
        if train_cfg.seq_len > model.config.block_size:
            raise ValueError(f"seq_len {train_cfg.seq_len} exceeds block_size {model.config.block_size}")
        shape = (train_cfg.micro_batch, train_cfg.seq_len, dist.rank, dist.world_size)
        train = ShardLoader.from_dir(args.data, "train", *shape)
        val = ShardLoader.from_dir(args.data, "val", *shape)
        evals = []
        if args.hellaswag != "off":
            from zth.gpt2.hellaswag import hellaswag_hook

            limit = args.hellaswag_limit if args.hellaswag_limit is not None else HELLASWAG_LIMIT[args.preset]
            evals.append(hellaswag_hook(limit, args.hellaswag))
        if args.samples:
            evals.append(sample_hook(args.samples, args.sample_tokens))
        peak = args.peak_tflops * 1e12 if args.peak_tflops else None
        trainer = Trainer(model, train, train_cfg, val_data=val, evals=evals, dist=dist, peak=peak)
        if dist.master:
            print(f"{model.num_params():,} parameters | {trainer.grad_accum_steps} accumulation steps x "
                  f"{dist.world_size} ranks | device {dist.device}", flush=True)
        trainer.train(resume=args.resume)
    except (ValueError, CheckpointError, DataError, OSError) as e:
        print(f"zth.gpt2.train: error: {e}", file=sys.stderr)
        return 2
    finally:
        cleanup_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
