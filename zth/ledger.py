"""The reproduction ledger: ``zth/ledger.toml`` (shipped with the package) read into dataclasses.

The ledger is the one place that holds the lectures' figures and this book's targets: the
chapters with their execution budgets, and one row per reproduced number (the lecture's
figure and its source, the CPU target and the glue name that measures it, the GPU run that
records it). :mod:`zth.scoreboard` checks it against a build of the book.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Chapter", "GpuMetric", "Ledger", "Row", "Target", "load_ledger"]

_OPS = {"<": "<", "<=": "≤", "==": "=", ">=": "≥", ">": ">"}


@dataclass(frozen=True)
class Target:
    """A goal for a number: ``op`` is one of ``<``, ``<=``, ``==`` (within ``tol``), ``>=``, ``>``;
    against a fixed ``value``, or against the value glued under ``glue`` (same build)."""

    op: str
    value: float | None = None
    tol: float = 0.0
    glue: str | None = None
    label: str | None = None  # how to show it, when the plain ``op value`` would mislead

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"unknown target operator {self.op!r}")
        if (self.value is None) == (self.glue is None):
            raise ValueError("a target needs exactly one of value and glue")

    def met(self, x: float, ref: float | None = None) -> bool:
        """Whether ``x`` meets the target (``ref``: the value of ``glue``, for a relative target)."""
        v = self.value if self.glue is None else ref
        if v is None:
            raise ValueError(f"target against {self.glue!r} needs its value")
        return {
            "<": x < v, "<=": x <= v + self.tol, "==": abs(x - v) <= self.tol,
            ">=": x >= v - self.tol, ">": x > v,
        }[self.op]

    def __str__(self) -> str:
        if self.label:
            return self.label
        if self.glue is not None:
            return f"{_OPS[self.op]} `{self.glue}`"
        value = _fmt_exact(self.value)
        return f"{_OPS[self.op]} {value}" + (f" ± {self.tol:g}" if self.op == "==" and self.tol else "")


def _fmt_exact(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() and abs(x) >= 1000 else f"{x:g}"


@dataclass(frozen=True)
class GpuMetric:
    """Where a full-configuration run records a row's number: ``results/<family>/<run>/metrics.jsonl``."""

    family: str
    metric: str
    best: str = "min"  # "min" or "max" over the log
    preset: str | None = None  # only runs of this preset (run.json's "preset") count
    target: Target | None = None


@dataclass(frozen=True)
class Chapter:
    """A chapter of the book: its document name, short title, the lecture it follows, its budget."""

    doc: str
    title: str
    lecture: str
    budget_s: float


@dataclass(frozen=True)
class Row:
    """One reproduced number of the ledger (see ``zth/ledger.toml`` for the fields)."""

    chapter: str
    quantity: str
    lecture: str = "—"
    source: str = ""
    glue: str | None = None
    target: Target | None = None
    no_target: str | None = None
    gpu: GpuMetric | None = None

    @property
    def name(self) -> str:
        """How a failure names the row."""
        return f"{self.chapter} · {self.quantity}" + (f" (glue {self.glue})" if self.glue else "")


@dataclass(frozen=True)
class Ledger:
    """The chapters and rows of the ledger, and the share of its budget a chapter may use."""

    chapters: list[Chapter]
    rows: list[Row]
    budget_margin: float = 0.75

    def chapter(self, doc: str) -> Chapter:
        """The chapter named ``doc``."""
        return next(c for c in self.chapters if c.doc == doc)


def _target(d: dict | None) -> Target | None:
    return None if d is None else Target(**d)


def load_ledger(path: str | Path | None = None) -> Ledger:
    """Read the ledger (default: the one shipped with the package) and check that it is consistent."""
    if path is None:
        text = resources.files("zth").joinpath("ledger.toml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    data = tomllib.loads(text)
    chapters = [Chapter(**c) for c in data.get("chapter", [])]
    rows = []
    for r in data.get("row", []):
        gpu = r.pop("gpu", None)
        if gpu is not None:
            gpu = GpuMetric(**{**gpu, "target": _target(gpu.get("target"))})
        rows.append(Row(**{**r, "target": _target(r.get("target")), "gpu": gpu}))
    ledger = Ledger(chapters, rows, data.get("budget_margin", 0.75))
    docs = {c.doc for c in chapters}
    for row in rows:
        if row.chapter not in docs:
            raise ValueError(f"{row.name}: unknown chapter {row.chapter!r}")
        if row.glue is None and row.gpu is None:
            raise ValueError(f"{row.name}: a row needs a glue name or a GPU metric")
        if row.glue is not None and (row.target is None) == (row.no_target is None):
            raise ValueError(f"{row.name}: give a target or the reason for none (no_target), not both")
    return ledger
