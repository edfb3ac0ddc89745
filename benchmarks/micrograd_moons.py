"""zth.micrograd vs the micrograd 0.1.0 package on micrograd's moons demo, side by side.

Both engines run the same demo (MLP(2, [16, 16, 1]), make_moons(100, noise=0.1), SVM loss +
1e-4 L2, 100 SGD steps) from the same seeds, so they build the same weights and see the same
data. Both get the data exactly as micrograd's demo notebook does (numpy rows wrapped in Value). Prints
both loss trajectories' largest difference, both final (loss, accuracy) and the speed-up.

    pip install -e ".[bench]"   # micrograd==0.1.0
    python benchmarks/micrograd_moons.py [--steps 100]
"""

from __future__ import annotations

import argparse
import random
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
    args = ap.parse_args()
    ours, t_ours = run("zth", args.steps)
    print(f"zth.micrograd      {t_ours:8.2f} s   final loss {ours[-1][0]:.6f}  acc {ours[-1][1]:.0%}")
    theirs, t_theirs = run("micrograd", args.steps)
    print(f"micrograd 0.1.0    {t_theirs:8.2f} s   final loss {theirs[-1][0]:.6f}  acc {theirs[-1][1]:.0%}")
    diff = max(abs(a[0] - b[0]) for a, b in zip(ours, theirs))
    same_acc = all(a[1] == b[1] for a, b in zip(ours, theirs))
    print(f"max |loss difference| over {args.steps} steps: {diff:.3e}; accuracies equal: {same_acc}")
    print(f"speed-up: {t_theirs / t_ours:.1f}x")
    if diff > 1e-9 or not same_acc:
        raise SystemExit("the two engines disagree")


if __name__ == "__main__":
    main()
