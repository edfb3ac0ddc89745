"""Generation speed of zth.llama with and without the KV cache (and transformers' Llama), side by side.

Greedy decoding from one token, batch 1, llama2.c's 260K shape (random weights: speed does not
depend on them). For each length, prints tokens/s of zth without the cache, zth with it, and
``transformers.LlamaForCausalLM.generate`` with its cache on the same weights, and the ratios.
All three produce the same tokens (checked).

    python benchmarks/llama_generation.py [--lengths 64 128 256 512] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch


def tokens_per_s(fn, n: int, repeats: int = 2) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return n / best, out


def main() -> None:
    from zth.llama import PRESETS, Llama

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 511])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Llama(PRESETS["stories260K"]).eval()
    try:
        from zth.llama.hf import to_hf
        hf = to_hf(model)
    except ImportError:
        hf = None
    start = torch.ones(1, 1, dtype=torch.long)
    print(f"stories260K, batch 1, greedy, {args.threads} thread(s); tokens/s")
    print(f"{'new tokens':>10} | {'no cache':>9} | {'KV cache':>9} | {'HF cache':>9} | "
          "cache/no-cache | cache/HF")
    for n in args.lengths:
        full, a = tokens_per_s(lambda n=n: model.generate(start, n, temperature=0.0, use_cache=False), n)
        cached, b = tokens_per_s(lambda n=n: model.generate(start, n, temperature=0.0, use_cache=True), n)
        assert torch.equal(a, b)
        hf_tps, ratio_hf = float("nan"), float("nan")
        if hf is not None:
            with torch.no_grad():
                hf_tps, c = tokens_per_s(lambda n=n: hf.generate(start, max_new_tokens=n, min_new_tokens=n,
                                                                 do_sample=False), n)
            assert torch.equal(a, c)
            ratio_hf = cached / hf_tps
        print(f"{n:>10} | {full:>9,.0f} | {cached:>9,.0f} | {hf_tps:>9,.0f} | {cached / full:>14.1f}x"
              f" | {ratio_hf:>7.2f}x")


if __name__ == "__main__":
    main()
