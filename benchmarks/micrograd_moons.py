"""zth.micrograd vs the micrograd 0.1.0 package on micrograd's moons demo, side by side.

Each engine runs in its own fresh interpreter, one after the other, on the same demo:
MLP(2, [16, 16, 1]), make_moons(100, noise=0.1), SVM loss + 1e-4 L2, 100 SGD steps, from the
same seeds, so both build the same weights and see the same data, given exactly as micrograd's
demo notebook gives it (numpy rows wrapped in Value). Prints both final (loss, accuracy), the
largest difference between the two loss trajectories, and the speed-up.

    pip install -e ".[bench]"   # micrograd==0.1.0
    python benchmarks/micrograd_moons.py [--steps 100]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time

import numpy as np


def run(engine: str, steps: int) -> tuple[list[tuple[float, float]], float]:
    from zth.micrograd import make_moons, train_moons

    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1
    if engine == "zth":
        from zth.micrograd import MLP, Value
    else:
        from micrograd.engine import Value
        from micrograd.nn import MLP
    model = MLP(2, [16, 16, 1])
    t0 = time.perf_counter()
    history = train_moons(model, X, y, steps=steps, value=Value)
    return history, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--engine", choices=["zth", "micrograd"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.engine:  # one engine, in its own fresh interpreter: print the result as JSON
        history, seconds = run(args.engine, args.steps)
        print(json.dumps({"history": [[float(l), float(a)] for l, a in history], "seconds": seconds}))
        return
    results = {}
    for engine in ("zth", "micrograd"):
        out = subprocess.run([sys.executable, __file__, "--engine", engine, "--steps", str(args.steps)],
                             check=True, capture_output=True, text=True).stdout
        results[engine] = json.loads(out.strip().splitlines()[-1])
        h, t = results[engine]["history"], results[engine]["seconds"]
        name = "zth.micrograd" if engine == "zth" else "micrograd 0.1.0"
        print(f"{name:16s} {t:8.2f} s   final loss {h[-1][0]:.6f}  accuracy {h[-1][1]:.0%}", flush=True)
    ours, theirs = results["zth"]["history"], results["micrograd"]["history"]
    diff = max(abs(a[0] - b[0]) for a, b in zip(ours, theirs))
    same_acc = all(a[1] == b[1] for a, b in zip(ours, theirs))
    print(f"max |loss difference| over {args.steps} steps: {diff:.3e}; accuracies equal: {same_acc}")
    print(f"speed-up: {results['micrograd']['seconds'] / results['zth']['seconds']:.1f}x")
    if diff > 1e-9 or not same_acc:
        raise SystemExit("the two engines disagree")


if __name__ == "__main__":
    main()
