"""Two BPE trainers that learn the same merges: the lecture's reference loop and a fast one.

Both take the training text already split into chunks (as UTF-8 ``bytes``; merges never cross
a chunk boundary) and return the learned merges ``[(a, b), ...]``, where the i-th merge creates
token ``first_id + i``.

**Tie-break.** Each step merges the most frequent adjacent pair; among pairs with the same
count it takes the smallest pair, comparing ``(a, b)`` as a tuple (the smaller left id, then
the smaller right id). The rule depends only on the counts, never on the order in which pairs
were first seen, so the two trainers agree merge for merge. Training stops early when no pair
is left (every chunk has become a single token).
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from zth.tokenizer.bpe import get_stats, merge

__all__ = ["train_reference", "train_fast", "TRAINERS"]

Pair = tuple[int, int]
Progress = Callable[[int, Pair, int, int], None]  # (merge index, pair, new id, count)

_SHIFT = 32  # a pair (a, b) is keyed as a << 32 | b: an int hashes and compares faster than a tuple
_MASK = (1 << _SHIFT) - 1


def train_reference(chunks: Sequence[bytes], num_merges: int, first_id: int = 256,
                    progress: Progress | None = None) -> list[Pair]:
    """The lecture's trainer: recount every pair in every chunk, merge the best one everywhere, repeat.

    O(merges × text length): about ten seconds for 256 merges on a 185 kB text.
    """
    ids = [list(chunk) for chunk in chunks]
    merges: list[Pair] = []
    for i in range(num_merges):
        stats: dict[Pair, int] = {}
        for chunk_ids in ids:
            get_stats(chunk_ids, stats)
        if not stats:
            break
        pair = max(stats, key=lambda p: (stats[p], -p[0], -p[1]))  # the documented tie-break
        idx = first_id + i
        ids = [merge(chunk_ids, pair, idx) for chunk_ids in ids]
        merges.append(pair)
        if progress is not None:
            progress(i, pair, idx, stats[pair])
    return merges


def train_fast(chunks: Iterable[bytes] | Mapping[bytes, int], num_merges: int, first_id: int = 256,
               progress: Progress | None = None) -> list[Pair]:
    """The same merges as :func:`train_reference`, in time proportional to the work each merge does.

    * Each distinct chunk is stored once with its count as a weight (``chunks`` may be that
      mapping already), all of them in one doubly linked list of token positions.
    * Pair counts are kept up to date incrementally: merging ``a b`` at one position only changes
      the pairs with its two neighbours.
    * An index from each pair to the positions where it was created finds the occurrences of the
      chosen pair without scanning (stale positions are checked and skipped).
    * A heap of ``(-count, pair)`` picks the best pair; entries are refreshed lazily because
      old pairs' counts only ever decrease.
    """
    weights = chunks if isinstance(chunks, Mapping) else Counter(chunks)
    sym, wt, counts, where = _index(weights)
    n = len(sym)
    nxt = list(range(1, n + 1))
    prv = list(range(-1, n - 1))
    heap = [(-c, key) for key, c in counts.items()]
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush

    merges: list[Pair] = []
    while len(merges) < num_merges and heap:
        neg, key = pop(heap)
        c = counts.get(key, 0)
        if c <= 0:
            continue
        if c != -neg:  # stale entry: the count dropped since it was pushed
            push(heap, (-c, key))
            continue
        a, b = key >> _SHIFT, key & _MASK
        new = first_id + len(merges)
        merges.append((a, b))
        new_left = new << _SHIFT
        new_counts: defaultdict[int, int] = defaultdict(int)  # pairs with the new token
        new_where: defaultdict[int, list[int]] = defaultdict(list)
        for i in sorted(where.pop(key)):
            if sym[i] != a:
                continue
            j = nxt[i]
            if sym[j] != b:  # also false at a chunk boundary (-1)
                continue
            w = wt[i]
            k = nxt[j]
            p = prv[i]
            if p >= 0 and (s := sym[p]) >= 0:
                if s == new:  # merged earlier in this same pass
                    new_counts[new_left | a] -= w
                else:
                    counts[s << _SHIFT | a] -= w
                pk = s << _SHIFT | new
                new_counts[pk] += w
                new_where[pk].append(p)
            if (s := sym[k]) >= 0:
                counts[b << _SHIFT | s] -= w
                nk = new_left | s
                new_counts[nk] += w
                new_where[nk].append(i)
            sym[i] = new
            sym[j] = -1
            nxt[i] = k
            prv[k] = i
        del counts[key]
        counts.update(new_counts)
        where.update(new_where)
        for pk, cp in new_counts.items():
            if cp > 0:
                push(heap, (-cp, pk))
        if progress is not None:
            progress(len(merges) - 1, (a, b), new, c)
    return merges


def _index(weights: Mapping[bytes, int]) -> tuple[list[int], list[int], dict[int, int], dict[int, list[int]]]:
    """Lay the distinct chunks end to end and count their pairs (vectorized: it touches every byte).

    Returns the token at each position (-1 marks the boundary after each chunk), each position's
    weight, the weighted count of each pair key, and the positions where each pair starts.
    """
    items = [(chunk, count) for chunk, count in weights.items() if len(chunk) > 1 and count > 0]
    lengths = np.array([len(chunk) + 1 for chunk, _ in items], dtype=np.int64)
    buf = b"".join(chunk + b"\0" for chunk, _ in items)
    sym = np.frombuffer(buf, dtype=np.uint8).astype(np.int64)
    sym[np.cumsum(lengths) - 1] = -1  # the boundary after each chunk
    wt = np.repeat(np.array([count for _, count in items], dtype=np.int64), lengths)
    left, right = sym[:-1], sym[1:]
    pos = np.flatnonzero((left >= 0) & (right >= 0))
    keys = (left[pos] << _SHIFT) | right[pos]
    order = np.argsort(keys, kind="stable")  # stable: positions stay ascending within a pair
    keys, pos = keys[order], pos[order]
    uniq, start = np.unique(keys, return_index=True)
    totals = np.add.reduceat(wt[pos], start) if len(pos) else np.zeros(0, dtype=np.int64)
    pos_list, bounds = pos.tolist(), start.tolist() + [len(pos)]
    where = {k: pos_list[s:e] for k, s, e in zip(uniq.tolist(), bounds, bounds[1:], strict=False)}
    return sym.tolist(), wt.tolist(), dict(zip(uniq.tolist(), totals.tolist(), strict=True)), where


TRAINERS: dict[str, Callable[..., list[Pair]]] = {"fast": train_fast, "reference": train_reference}
