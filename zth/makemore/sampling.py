"""Sampling words, one character at a time, from any model that maps contexts to logits."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from zth.makemore.data import Vocab

DEFAULT_SEED = 2147483647  # the lectures' seed


@torch.no_grad()
def sample(model: Callable[[torch.Tensor], torch.Tensor], vocab: Vocab, block_size: int, n: int = 20,
           generator: torch.Generator | int = DEFAULT_SEED, max_len: int = 100) -> list[str]:
    """Draw ``n`` words from ``model``, as the lectures do, and return them without the final ``.``.

    Args:
        model: maps a ``1 × block_size`` tensor of indices to ``1 × len(vocab)`` logits. Put it in
            inference mode first (e.g. BatchNorm layers using running statistics).
        vocab: the vocabulary the model was trained with.
        block_size: how many previous characters the model sees.
        n: how many words.
        generator: a seeded ``torch.Generator`` (it advances) or an integer seed for a new one.
        max_len: stop a word that has not ended after this many characters.

    Each word starts from ``block_size`` boundary tokens; every step samples the next index
    with ``torch.multinomial(softmax(logits), 1, generator=g)`` and ends at ``.``, so the same
    seed gives the same words.
    """
    if n < 0 or max_len < 1:
        raise ValueError(f"need n >= 0 and max_len >= 1, got n={n}, max_len={max_len}")
    g = generator if isinstance(generator, torch.Generator) else torch.Generator().manual_seed(generator)
    words = []
    for _ in range(n):
        context, out = [0] * block_size, []
        while len(out) < max_len:
            logits = model(torch.tensor([context]))
            if logits.shape != (1, len(vocab)):
                raise ValueError(f"the model returned logits of shape {tuple(logits.shape)}, "
                                 f"expected (1, {len(vocab)})")
            ix = torch.multinomial(F.softmax(logits, dim=1), num_samples=1, generator=g).item()
            if ix == 0:
                break
            context = context[1:] + [ix]
            out.append(ix)
        words.append(vocab.decode(out))
    return words
