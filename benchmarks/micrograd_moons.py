"""zth.micrograd's two engines vs the micrograd 0.1.0 package on micrograd's moons demo.

Each engine runs in its own fresh interpreter, one after the other (``--parallel``: all at
once), on the same demo: MLP(2, [16, 16, 1]), make_moons(100, noise=0.1), SVM loss + 1e-4 L2,
100 SGD steps, from the same seeds, so all build the same weights and see the same data (as
Python floats). Prints each run's wall-clock and CPU seconds and final (loss, accuracy), the
speed-ups, and checks the loss sequences:

* the lecture engine and the fast engine: equal to the last bit, step by step;
* micrograd 0.1.0 with each Value's children kept in order (a tuple instead of a set): equal to
  the last bit as well;
* micrograd 0.1.0 as published: its children are a set, whose order follows memory addresses,
  so it adds up some gradients in another order and its losses may differ in the last bits;
  the largest difference is printed.

    pip install -e ".[bench]"   # micrograd==0.1.0
    python benchmarks/micrograd_moons.py [--steps 100] [--parallel]
"""

from __future__ import annotations

import argparse
import sys

from zth.micrograd.race import Race, max_loss_difference

NAMES = {"lecture": "zth lecture engine", "fast": "zth fast engine", "micrograd": "micrograd 0.1.0",
         "micrograd-ordered": "micrograd, ordered"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--parallel", action="store_true", help="run the engines at the same time")
    args = ap.parse_args()
    results = Race(["fast", "lecture", "micrograd", "micrograd-ordered"], args.steps, args.parallel).results()
    for engine, r in results.items():
        loss, acc = r["history"][-1]
        print(f"{NAMES[engine]:20s} {r['seconds']:8.2f} s wall {r['cpu']:8.2f} s CPU   "
              f"final loss {loss:.6f}  accuracy {acc:.0%}")
    fast, lecture, mg, ordered = (results[e] for e in ("fast", "lecture", "micrograd", "micrograd-ordered"))
    same_lecture = fast["history"] == lecture["history"]
    same_ordered = fast["history"] == ordered["history"]
    same_acc = [a for _, a in fast["history"]] == [a for _, a in mg["history"]]
    print(f"lecture engine == fast engine, every loss and accuracy to the last bit: {same_lecture}")
    print(f"micrograd (children in order) == fast engine, to the last bit: {same_ordered}")
    print(f"micrograd 0.1.0 as published: max |loss difference| {max_loss_difference(fast, mg):.3e}, "
          f"losses identical: {fast['history'] == mg['history']}, accuracies equal: {same_acc}")
    for key, what in (("seconds", "wall-clock"), ("cpu", "CPU time")):
        print(f"speed-up over micrograd 0.1.0 ({what}): fast engine {mg[key] / fast[key]:.1f}x, "
              f"lecture engine {mg[key] / lecture[key]:.2f}x")
    if not (same_lecture and same_ordered and same_acc):
        print("the engines disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
