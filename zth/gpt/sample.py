"""Sample text from a trained checkpoint.

    python -m zth.gpt.sample results/gpt/book-cpu              # the folder's best.pt
    python -m zth.gpt.sample results/gpt/book-cpu/last.pt --tokens 1000 --prompt "ROMEO:" --top-k 20

Bad input (a missing or corrupt checkpoint, a prompt with characters the model has never seen,
a temperature that is not a positive number) ends with a one-line message and exit code 2.
"""

from __future__ import annotations

import math
import sys

import torch

from zth.command import ArgumentParser, fail, parse
from zth.gpt.checkpoint import load_gpt
from zth.storage import CheckpointError
from zth.sysinfo import pick_device


def sample(ckpt_path: str, tokens: int = 500, prompt: str = "\n", temperature: float = 1.0,
           top_k: int | None = None, seed: int = 1337, device: str = "auto",
           num_samples: int = 1) -> list[str]:
    """``num_samples`` continuations of ``prompt`` (prompt included) from a checkpoint."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    dev = pick_device(device)
    model, tokenizer = load_gpt(ckpt_path, dev)
    ids = tokenizer.encode(prompt or "\n")
    idx = torch.tensor([ids] * num_samples, dtype=torch.long, device=dev)
    gen = torch.Generator(device=dev).manual_seed(seed)
    out = model.generate(idx, tokens, temperature=temperature, top_k=top_k, generator=gen)
    return [tokenizer.decode(row.tolist()) for row in out]


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the sampling command; returns the exit status (0, or 2 on bad input)."""
    prog = prog or "python -m zth.gpt.sample"
    ap = ArgumentParser(prog=prog, description="Sample text from a zth.gpt checkpoint.")
    ap.add_argument("checkpoint", help="a .pt file, or a run folder (its best.pt)")
    ap.add_argument("--tokens", type=int, default=500, help="characters to generate (default 500)")
    ap.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-k", type=int, default=None)
    ap.add_argument("--num-samples", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--device", default="auto")
    args = parse(ap, sys.argv[1:] if argv is None else list(argv))
    if isinstance(args, int):
        return args
    if args.tokens < 0 or args.num_samples < 1:
        return fail(prog, "--tokens must be >= 0 and --num-samples >= 1")
    try:
        texts = sample(args.checkpoint, args.tokens, args.prompt, args.temperature, args.top_k, args.seed,
                       args.device, args.num_samples)
    except (CheckpointError, ValueError) as e:
        return fail(prog, e)
    print("\n----------\n".join(texts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
