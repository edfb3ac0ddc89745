"""HellaSwag: pick the right one of four endings by the model's mean token loss on each.

Every example renders as four rows ``context + " " + ending``; the model scores each ending
by its cross-entropy over the ending's tokens only. The prediction with the lowest *mean*
token loss gives the normalized accuracy (``acc_norm``) the lecture reports; the lowest
*sum* gives plain ``acc``. Examples read the official jsonl schema (``ctx``, ``endings``,
``label``). The official validation file is used when it is present; otherwise the derived
offline copy, which lacks the WikiHow bracket tags, so its numbers differ slightly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn import functional as F

from zth import data
from zth.train.ddp import all_reduce_sum


def hellaswag_file(source: str = "auto") -> tuple[Path, str]:
    """The HellaSwag validation file and which one it is (``"official"`` or ``"derived"``).

    ``"auto"`` takes the official file when it is already present locally, else the derived
    copy; ``"official"`` may download it (``zth.data``); ``"derived"`` takes the offline copy.
    """
    if source == "auto":
        have = data.status()
        if have.get("hellaswag"):
            return have["hellaswag"], "official"
        if have.get("hellaswag_derived"):
            return have["hellaswag_derived"], "derived"
        raise data.DataError("no HellaSwag file present: neither the official hellaswag_val.jsonl "
                             "nor the derived copy (set ZTH_DATA_DIR, or use source='official')")
    if source == "official":
        return data.path("hellaswag"), "official"
    if source == "derived":
        return data.path("hellaswag_derived"), "derived"
    raise ValueError(f"HellaSwag source must be 'auto', 'official' or 'derived', got {source!r}")


def load_examples(path: str | Path, limit: int | None = None) -> list[dict]:
    """The first ``limit`` examples (all when None) of a HellaSwag jsonl file."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if limit is not None and len(out) >= limit:
                break
            ex = json.loads(line)
            if not {"ctx", "endings", "label"} <= ex.keys() or len(ex["endings"]) != 4:
                raise ValueError(f"{path}: line {n} is not a HellaSwag example")
            out.append(ex)
    return out


def render_example(example: dict, encode: Callable[[str], list[int]], max_len: int | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Tokens ``(4, L)``, a mask ``(4, L)`` that is 1 on ending tokens, and the label.

    Rows are right-padded with zeros. Rows longer than ``max_len`` lose context from the left.
    """
    ctx = encode(example["ctx"])
    rows, masks = [], []
    for ending in example["endings"]:
        end = encode(" " + ending)  # the ending continues the context after a space
        row, mask = ctx + end, [0] * len(ctx) + [1] * len(end)
        if max_len is not None and len(row) > max_len:
            row, mask = row[-max_len:], mask[-max_len:]
        rows.append(row)
        masks.append(mask)
    width = max(len(r) for r in rows)
    tokens = torch.zeros(4, width, dtype=torch.long)
    mask = torch.zeros(4, width, dtype=torch.long)
    for i, (r, m) in enumerate(zip(rows, masks, strict=True)):
        tokens[i, :len(r)] = torch.tensor(r)
        mask[i, :len(m)] = torch.tensor(m)
    return tokens, mask, int(example["label"])


@torch.no_grad()
def score_endings(model: nn.Module, tokens: torch.Tensor, mask: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum and mean cross-entropy of each row's ending tokens, each of shape ``(4,)``."""
    logits, _ = model(tokens)
    losses = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten(),
                             reduction="none").view(tokens.size(0), -1)
    m = mask[:, 1:].to(losses.dtype)  # the loss at position t predicts token t + 1
    total = (losses * m).sum(dim=1)
    return total, total / m.sum(dim=1)


def evaluate(model: nn.Module, examples: list[dict], encode: Callable[[str], list[int]],
             device: str = "cpu", autocast: Callable | None = None, rank: int = 0,
             world_size: int = 1) -> dict:
    """Accuracy (``acc`` by sum, ``acc_norm`` by mean token loss) over ``examples``.

    ``autocast`` is a factory of the context to score in (e.g. ``Trainer.autocast``). Under DDP
    each rank scores every ``world_size``-th example and the counts are summed.
    """
    was_training = model.training
    model.eval()
    max_len = getattr(getattr(model, "config", None), "block_size", None)
    counts = torch.zeros(3, dtype=torch.long, device=device)  # n, correct, correct_norm
    for ex in examples[rank::world_size]:
        tokens, mask, label = render_example(ex, encode, max_len)
        with (autocast or nullcontext)():
            total, mean = score_endings(model, tokens.to(device), mask.to(device))
        counts += torch.tensor([1, int(total.argmin()) == label, int(mean.argmin()) == label],
                               device=device)
    all_reduce_sum(counts)
    model.train(was_training)
    n, correct, correct_norm = counts.tolist()
    return {"n": n, "acc": correct / max(n, 1), "acc_norm": correct_norm / max(n, 1)}


def hellaswag_hook(limit: int | None = None, source: str = "auto") -> Callable:
    """A ``Trainer`` eval hook: HellaSwag ``acc_norm`` on the first ``limit`` examples."""
    path, which = hellaswag_file(source)
    examples = load_examples(path, limit)
    enc = data.tiktoken_encoding("gpt2")

    def hook(trainer) -> dict:
        d = trainer.dist
        r = evaluate(trainer.raw_model, examples, enc.encode_ordinary, d.device, trainer.autocast,
                     d.rank, d.world_size)
        return {"hellaswag_acc_norm": r["acc_norm"], "hellaswag_n": r["n"], "hellaswag_file": which}

    return hook
