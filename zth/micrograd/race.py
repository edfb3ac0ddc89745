"""The moons demo timed on several engines, each in its own fresh Python process.

Every run builds the demo from the same seeds (so the same data and the same initial weights),
trains 100 SGD steps and reports its loss history, wall-clock seconds and CPU seconds. The
engines: ``lecture`` and ``fast`` (``zth.micrograd``), ``micrograd`` (the micrograd 0.1.0
package, as published) and ``micrograd-ordered`` (the same package with each ``Value``'s
children kept in a tuple instead of a set, which fixes the order in which it adds up gradients;
see ``benchmarks/micrograd_moons.py``). Inputs are given to every engine as Python floats.

    python -m zth.micrograd.race --engine fast --steps 100   # one run; prints JSON
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from zth.command import ArgumentParser, fail, parse

ENGINES = ("lecture", "fast", "micrograd", "micrograd-ordered")


def run(engine: str, steps: int = 100) -> dict:
    """Train the moons demo on ``engine`` in this process; history, wall and CPU seconds."""
    import numpy as np

    from zth.micrograd.moons import make_moons, train_moons

    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    X, y = X.tolist(), (y * 2 - 1).tolist()
    if engine in ("lecture", "fast"):
        from zth.micrograd.nn import MLP

        model = MLP(2, [16, 16, 1], engine=engine)
    elif engine in ("micrograd", "micrograd-ordered"):
        from micrograd import engine as mg
        from micrograd.nn import MLP

        if engine == "micrograd-ordered":
            _keep_children_in_order(mg.Value)
        model = MLP(2, [16, 16, 1])
    else:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    t0, c0 = time.perf_counter(), time.process_time()
    history = train_moons(model, X, y, steps=steps)
    return {"engine": engine, "history": [[float(loss), float(acc)] for loss, acc in history],
            "seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def _keep_children_in_order(Value: type) -> None:
    """Patch micrograd's ``Value`` so that ``_prev`` is the tuple of children, in order."""
    init = Value.__init__

    def ordered_init(self, data, _children=(), _op=""):
        init(self, data, _children, _op)
        self._prev = tuple(dict.fromkeys(_children))  # x * x has one child, as in the set

    Value.__init__ = ordered_init


class Race:
    """Runs started as subprocesses; ``results()`` waits for them and reads what they report."""

    def __init__(self, engines, steps: int = 100, parallel: bool = True):
        self.engines, self.steps = list(engines), steps
        for engine in self.engines:
            if engine not in ENGINES:
                raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        root = str(Path(__file__).resolve().parents[2])  # the folder that holds zth/
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        self._env = {**os.environ, "PYTHONPATH": path}
        self._procs = {}
        self._results = {}
        if parallel:
            for engine in self.engines:
                self._procs[engine] = self._start(engine)
        else:
            for engine in self.engines:
                self._results[engine] = self._finish(engine, self._start(engine))

    def _start(self, engine: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "zth.micrograd.race", "--engine", engine, "--steps", str(self.steps)]
        return subprocess.Popen(cmd, env=self._env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def _finish(engine: str, proc: subprocess.Popen) -> dict:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"the {engine} run failed:\n{err.strip()}")
        return json.loads(out.strip().splitlines()[-1])

    def results(self) -> dict[str, dict]:
        """Each engine's result, in the order given, once all runs have finished."""
        for engine, proc in self._procs.items():
            self._results[engine] = self._finish(engine, proc)
        self._procs = {}
        return {engine: self._results[engine] for engine in self.engines}


def max_loss_difference(a: dict, b: dict) -> float:
    """The largest absolute difference between two runs' losses, step by step."""
    return max(abs(x[0] - y[0]) for x, y in zip(a["history"], b["history"], strict=True))


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = ArgumentParser(prog=prog or "python -m zth.micrograd.race", description=__doc__.splitlines()[0])
    ap.add_argument("--engine", choices=ENGINES, required=True)
    ap.add_argument("--steps", type=int, default=100)
    args = parse(ap, sys.argv[1:] if argv is None else argv)
    if isinstance(args, int):
        return args
    if args.steps < 1:
        return fail(ap.prog, f"--steps must be at least 1, got {args.steps}")
    print(json.dumps(run(args.engine, args.steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
