"""The byte-pair-encoding primitives the lecture writes: count pairs, merge a pair, encode a chunk.

Token ids are ``int``; a *merge* ``(a, b) -> c`` replaces every adjacent ``a, b`` by the new
token ``c``. Merges are applied in the order they were learned, which is the order of their
new ids, so an id doubles as the merge's rank.
"""

from __future__ import annotations

import heapq
import unicodedata
from collections.abc import Iterable, Mapping
from itertools import pairwise

__all__ = ["get_stats", "merge", "encode_chunk", "render_token"]

Pair = tuple[int, int]


def get_stats(ids: Iterable[int], counts: dict[Pair, int] | None = None, weight: int = 1) -> dict[Pair, int]:
    """Count every adjacent pair in ``ids`` (adding ``weight`` to ``counts`` if given).

    ``get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}``.
    """
    counts = {} if counts is None else counts
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def merge(ids: list[int], pair: Pair, idx: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids``, scanning left to right, by ``idx``.

    ``merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]``; overlaps go to the leftmost pair:
    ``merge([5, 5, 5], (5, 5), 6) == [6, 5]``.
    """
    out = []
    i, n = 0, len(ids)
    a, b = pair
    while i < n:
        if i < n - 1 and ids[i] == a and ids[i + 1] == b:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def encode_chunk(ids: list[int], merges: Mapping[Pair, int]) -> list[int]:
    """Apply ``merges`` to one chunk: lowest-ranked pair first, each pair left to right.

    The result equals the lecture's loop (find the present pair with the lowest rank, ``merge``
    it everywhere, repeat) but costs O(n log n) instead of O(n · merges), so a long chunk (a
    whole text for ``BasicTokenizer``) encodes quickly. A linked list holds the current tokens
    and a heap holds (rank, position) of every mergeable pair; stale entries are skipped.
    """
    n = len(ids)
    if n < 2:
        return list(ids)
    if n == 2:
        r = merges.get((ids[0], ids[1]))
        return list(ids) if r is None else [r]
    sym = list(ids)
    nxt = list(range(1, n + 1))
    nxt[-1] = -1
    prv = list(range(-1, n - 1))
    get = merges.get
    heap = [(r, i) for i, pair in enumerate(pairwise(sym)) if (r := get(pair)) is not None]
    heapq.heapify(heap)
    while heap:
        r, i = heapq.heappop(heap)
        j = nxt[i]
        if j < 0 or sym[i] < 0 or get((sym[i], sym[j])) != r:
            continue  # stale: one of the two tokens changed since this entry was pushed
        k = nxt[j]
        sym[i], sym[j] = r, -1
        nxt[i] = k
        if k >= 0:
            prv[k] = i
            if (rk := get((r, sym[k]))) is not None:
                heapq.heappush(heap, (rk, i))
        p = prv[i]
        if p >= 0 and (rp := get((sym[p], r))) is not None:
            heapq.heappush(heap, (rp, p))
    return [s for s in sym if s >= 0]


def _replace_control_characters(s: str) -> str:
    """Show control characters (newline, escape, ...) as ``\\uXXXX`` so a token prints on one line."""
    return "".join(ch if unicodedata.category(ch)[0] != "C" else f"\\u{ord(ch):04x}" for ch in s)


def render_token(t: bytes) -> str:
    """A token's bytes as printable text: invalid UTF-8 becomes U+FFFD, control characters escaped."""
    return _replace_control_characters(t.decode("utf-8", errors="replace"))
