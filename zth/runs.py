"""Recorded training runs: ``results/<family>/<run>/`` folders, read back for tables and plots.

The training commands write one folder per run: ``metrics.jsonl`` (one JSON object a line:
``kind``, ``step``, ``loss``, ``val_loss``, ``tokens_per_s``, ``elapsed_s``, ...; see
``zth.train.trainer``) and ``run.json`` (``device``, ``command``, ``git_revision``, ``preset``,
``started_at``, ``config``, ``results``, ...). The book's "Full run"
sections and the scoreboard read them with :func:`read_runs`; a folder that is missing simply
yields no runs, and a log line cut off mid-write is skipped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from zth.storage import write_text_atomic

__all__ = ["MetricsLog", "Run", "read_metrics", "read_runs", "read_throughput", "split_metrics",
           "time_to_loss"]


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass
class Run:
    """One recorded training run."""

    family: str  # e.g. "gpt", "gpt2", "llama"
    name: str
    path: Path
    info: dict = field(default_factory=dict)  # run.json
    metrics: list[dict] = field(default_factory=list)  # metrics.jsonl, one dict a line

    @property
    def device(self) -> str:
        """The device the run trained on, as ``run.json`` names it."""
        return str(self.info.get("device") or "unknown device")

    def series(self, name: str) -> tuple[list[int], list[float]]:
        """(steps, values) of metric ``name`` over the lines that have both."""
        rows = [r for r in self.metrics if _number(r.get(name)) and isinstance(r.get("step"), int)]
        return [r["step"] for r in rows], [float(r[name]) for r in rows]

    def best(self, name: str, mode: str = "min") -> float | None:
        """The best (``"min"`` or ``"max"``) logged value of metric ``name``, else None."""
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        values = [float(r[name]) for r in self.metrics if _number(r.get(name))]
        if not values:
            return None
        return min(values) if mode == "min" else max(values)

    def last(self, name: str) -> float | None:
        """The last logged value of ``name`` (e.g. ``step`` or ``elapsed_s``), else None."""
        values = [r[name] for r in self.metrics if _number(r.get(name))]
        return values[-1] if values else None


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` log: none for a missing file; a torn line (from a
    killed run) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def split_metrics(records: Iterable[dict]) -> tuple[list[dict], list[dict]]:
    """(train records, eval records) of a log whose records say their ``kind``."""
    records = list(records)
    return [r for r in records if r.get("kind") == "train"], [r for r in records if r.get("kind") == "eval"]


def time_to_loss(records: Iterable[dict], target: float, key: str = "val_loss") -> tuple[float, int] | None:
    """``(train_s, step)`` of the first evaluation whose ``key`` is at most ``target``; None if none is.

    ``train_s`` is the training time up to that evaluation, evaluations left out (the trainer's
    clock: the optimizer steps' own durations).
    """
    for r in records:
        if r.get("kind") == "eval" and _number(r.get(key)) and r[key] <= target and _number(r.get("train_s")):
            return float(r["train_s"]), int(r["step"])
    return None


class MetricsLog:
    """A ``metrics.jsonl`` that training appends to, one JSON object a line, each written at once."""

    def __init__(self, path: str | Path, keep_until_step: int | None = None):
        """Start ``path`` empty or, resuming, keep only the records up to ``keep_until_step``."""
        self.path = Path(path)
        kept = [] if keep_until_step is None else [
            r for r in read_metrics(self.path) if r.get("step", 0) <= keep_until_step]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict) -> None:
        """Append ``record`` as one line (the file is closed again: a crash loses nothing written)."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def read_runs(results: str | Path = "results", family: str | None = None) -> list[Run]:
    """Every run folder under ``results`` (of one ``family`` if given) that has a ``metrics.jsonl``."""
    runs = []
    for log in sorted(Path(results).glob(f"{family or '*'}/*/metrics.jsonl")):
        folder = log.parent
        try:
            info = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            info = {}
        runs.append(
            Run(
                folder.parent.name,
                folder.name,
                folder,
                info if isinstance(info, dict) else {},
                read_metrics(log),
            )
        )
    return runs


def read_throughput(results: str | Path = "results", family: str = "gpt2") -> list[Run]:
    """GPU speed ladders of the 124M model (``throughput-<device>.json``, from
    ``benchmarks/gpt2_throughput.py`` or ``benchmarks/gpu_record.py``) as runs of the
    ``gpt2-124m`` preset whose one record is the fastest rung measured: its ``tokens_per_s``
    and ``mfu``. CPU ladders and ladders of other shapes are left out."""
    runs = []
    for path in sorted(Path(results).glob(f"{family}/throughput-*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        cpu = str(rec.get("device", "CPU")).startswith("CPU") if isinstance(rec, dict) else True
        if cpu or rec.get("model") != "gpt2":
            continue
        rungs = [r for r in rec.get("rows", []) + [rec.get("final") or {}] if _number(r.get("tokens_per_s"))]
        if rungs:
            best = max(rungs, key=lambda r: r["tokens_per_s"])
            record = {"step": 0, "tokens_per_s": best["tokens_per_s"]}
            if _number(best.get("mfu")):
                record["mfu"] = best["mfu"]
            info = {"device": rec["device"], "preset": "gpt2-124m", "git_revision": rec.get("git")}
            runs.append(Run(family, path.stem, path, info, [record]))
    return runs

