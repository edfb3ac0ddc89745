"""The scoreboard: the reproduction ledger checked against a build of the book and the recorded runs.

The ledger (``zth/ledger.toml``, read by :mod:`zth.ledger`) is the one place that holds the
lectures' figures and this book's targets: one row per reproduced number, and the chapters with
their execution budgets. The measured numbers come from where the book left them:

* the chapters' ``glue`` outputs, which myst-nb writes to ``<docname>.glue.json`` in its
  output folder (``_build/jupyter_execute`` by default);
* each chapter's execution time, written beside them as ``<docname>.exec.json`` by the book's
  extension (``book/_ext/zth_book.py``);
* full-configuration runs in ``results/<family>/<run>/`` (``run.json`` and ``metrics.jsonl``,
  see :mod:`zth.runs`).

Every row gets a mark: met, missed, not glued (its chapter ran but did not glue the value), not
yet built, not yet run (a GPU row with no recorded run), or no target (and the ledger's reason).
``zth scoreboard`` prints the same tables in a terminal; ``tests/test_ledger.py`` fails after a
book build when a CPU row is missed or not glued.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from zth.ledger import Ledger, Row, Target, load_ledger
from zth.runs import Run, read_runs, read_throughput

__all__ = ["Mark", "Scoreboard", "parse_number"]

NBSP = "\u00a0"  # keeps "≤ 2.10" and "42 s" on one line at phone width
_NUMBER = re.compile(
    r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?|[-+]?\.\d+(?:[eE][-+]?\d+)?"
)


def parse_number(text: str) -> float | None:
    """The number a glued ``text/plain`` output shows: ``0.01``, ``'100%'`` (1.0), ``'76,579'``,
    ``np.float64(1.9)`` or ``tensor(1.9)``; None if it shows none."""
    s = text.strip()
    call = re.fullmatch(r"[A-Za-z_][\w.]*\((.*)\)", s, re.S)  # np.float64(1.9), tensor(1.9, ...)
    if call:
        return parse_number(call.group(1))
    try:
        value = ast.literal_eval(s)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = s
    if isinstance(value, (bool, int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    m = _NUMBER.search(value)
    if m is None:
        return None
    x = float(m.group().replace(",", ""))
    return x / 100 if value[m.end() :].lstrip().startswith("%") else x


def _show(text: str) -> str:
    """The glued text as a reader should see it (quotes dropped, big integers grouped, floats rounded)."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float) and len(text.strip().partition(".")[2]) > 6:  # glued at full precision
        return f"{value:.4f}" if abs(value) >= 1 else f"{value:.6g}"  # the lectures' 4 decimals
    return str(value)


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


MET, MISSED, NOT_GLUED, NOT_BUILT, NOT_RUN, NO_TARGET = (
    "met", "missed", "not glued", "not yet built", "not yet run", "no target")
_SYMBOL = {MET: "✓", MISSED: "✗", NOT_GLUED: "✗"}


@dataclass(frozen=True)
class Mark:
    """A row's verdict: ``status`` (met, missed, not glued, not yet built, not yet run, no target),
    the value as shown, and a reason where there is no verdict."""

    status: str
    shown: str = ""
    reason: str = ""

    @property
    def failed(self) -> bool:
        """Missed, or its chapter ran without gluing the value."""
        return self.status in (MISSED, NOT_GLUED)

    def __str__(self) -> str:
        text = f"{_SYMBOL.get(self.status, '')} {self.status}".strip()
        return f"{text} ({self.reason})" if self.reason else text


@dataclass
class Scoreboard:
    """What the book's build and the results folder hold, checked against the ledger."""

    glue: dict[str, tuple[str, str]]  # key -> (doc, text/plain)
    built: set[str]  # doc stems that have an executed notebook
    exec_s: dict[str, float]  # doc stem -> execution seconds
    runs: list[Run] = field(default_factory=list)
    ledger: Ledger = field(default_factory=load_ledger)

    @classmethod
    def from_build(cls, build: str | Path | None = None, results: str | Path | None = None,
                   ledger: Ledger | None = None) -> Scoreboard:
        """Read ``build`` (myst-nb's output folder; default ``$ZTH_BOOK_OUTPUT`` or
        ``_build/jupyter_execute``) and ``results`` (default ``$ZTH_RESULTS_DIR`` or ``results``)."""
        build = Path(build or os.environ.get("ZTH_BOOK_OUTPUT") or "_build/jupyter_execute")
        results = Path(results or os.environ.get("ZTH_RESULTS_DIR") or "results")
        glue: dict[str, tuple[str, str]] = {}
        built = {nb.stem for nb in build.glob("**/*.ipynb")}
        exec_s: dict[str, float] = {}
        for path in sorted(build.glob("**/*.glue.json")):
            doc = path.name.removesuffix(".glue.json")
            for key, output in json.loads(path.read_text(encoding="utf-8")).items():
                text = output.get("data", {}).get("text/plain")
                if isinstance(text, str):
                    glue[key] = (doc, text)
        for path in sorted(build.glob("**/*.exec.json")):
            runtime = json.loads(path.read_text(encoding="utf-8")).get("runtime")
            if isinstance(runtime, (int, float)):
                exec_s[path.name.removesuffix(".exec.json")] = float(runtime)
        runs = read_runs(results) + read_throughput(results)
        return cls(glue, built, exec_s, runs, ledger or load_ledger())

    def value(self, key: str) -> float | None:
        """The parsed number glued under ``key`` (None if absent or not a number)."""
        return parse_number(self.glue[key][1]) if key in self.glue else None

    def mark(self, row: Row) -> Mark:
        """The CPU verdict on ``row`` in this build."""
        if row.glue is None:
            return Mark(NO_TARGET, "", "measured on a GPU only")
        if row.chapter not in self.built:
            return Mark(NOT_BUILT)
        if row.glue not in self.glue:
            return Mark(NOT_GLUED, "", f"the chapter ran but glued no `{row.glue}`")
        shown, x = _show(self.glue[row.glue][1]), self.value(row.glue)
        if row.target is None:
            return Mark(NO_TARGET, shown, row.no_target or "")
        ref = None if row.target.glue is None else self.value(row.target.glue)
        if x is None or (row.target.glue is not None and ref is None):
            missing = row.glue if x is None else row.target.glue
            return Mark(NOT_GLUED, shown, f"no number glued as `{missing}`")
        if ref is not None:
            shown += f" (vs {_show(self.glue[row.target.glue][1])})"
        return Mark(MET if row.target.met(x, ref) else MISSED, shown)

    def gpu_mark(self, row: Row) -> Mark:
        """The verdict on ``row``'s full-configuration run: the best recorded value, or not yet run."""
        g = row.gpu
        if g is None:
            return Mark(NO_TARGET, "", "no GPU run of this quantity")
        found = [
            (v, r) for r in self.runs
            if r.family == g.family and (g.preset is None or r.info.get("preset") == g.preset)
            and (v := r.best(g.metric, g.best)) is not None
        ]
        if not found:
            return Mark(NOT_RUN, "", f"nothing in results/{g.family}/ yet")
        value, run = (min if g.best == "min" else max)(found, key=lambda vr: vr[0])
        shown = f"{_fmt(value)} ({run.family}/{run.name}, {run.device})"
        if g.target is None:
            return Mark(NO_TARGET, shown, "recorded for reference")
        return Mark(MET if g.target.met(value) else MISSED, shown)

    def failures(self) -> list[str]:
        """One line per CPU row that is missed or not glued in this build, naming the row."""
        out = []
        for row in self.ledger.rows:
            m = self.mark(row)
            if m.failed:
                against = f", {m.shown} against {row.target}" if m.shown else ""
                out.append(f"{row.name}: {m.status}{against}" + (f" ({m.reason})" if m.reason else ""))
        return out

    def summary(self) -> str:
        """One line: how many rows are met, missed, not yet run (GPU), not yet built, without target."""
        marks = [self.mark(r) for r in self.ledger.rows if r.glue]
        marks += [self.gpu_mark(r) for r in self.ledger.rows if r.gpu]
        statuses = (MET, MISSED, NOT_GLUED, NOT_RUN, NOT_BUILT, NO_TARGET)
        count = {s: sum(m.status == s for m in marks) for s in statuses}
        parts = [f"**{count[MET]} met**", f"**{count[MISSED] + count[NOT_GLUED]} missed**"
                 + (f" ({count[NOT_GLUED]} not glued)" if count[NOT_GLUED] else ""),
                 f"{count[NOT_RUN]} not yet run (GPU)"]
        if count[NOT_BUILT]:
            parts.append(f"{count[NOT_BUILT]} not yet built")
        return " · ".join(parts) + f" · {count[NO_TARGET]} shown without a target"

    def ledger_markdown(self) -> str:
        """The CPU rows: lecture, quantity, the lecture's figure, the target, this build's value, mark."""
        lines = ["| Lecture | Quantity | Lecture's figure | Target | zth (this build) | Mark |",
                 "|---|---|---|---|---|---|"]
        for row in self.ledger.rows:
            if row.glue is None:
                continue
            m = self.mark(row)
            lecture = self.ledger.chapter(row.chapter).lecture
            lines.append(f"| {lecture} | {row.quantity} | {_cell(row.lecture)} | "
                         f"{_cell(str(row.target or '—'))} | {_cell(m.shown)} | {m} |")
        return "\n".join(lines)

    def gpu_markdown(self) -> str:
        """The rows with a full-configuration GPU run: where it is recorded, its value and mark."""
        lines = ["| Lecture | Quantity | Lecture's figure | Target | Recorded in | Best recorded | Mark |",
                 "|---|---|---|---|---|---|---|"]
        for row in self.ledger.rows:
            if row.gpu is None:
                continue
            g, m = row.gpu, self.gpu_mark(row)
            where = f"`results/{g.family}/` `{g.metric}`" + (f" ({g.preset})" if g.preset else "")
            lecture = self.ledger.chapter(row.chapter).lecture
            lines.append(f"| {lecture} | {row.quantity} | {_cell(row.lecture)} | "
                         f"{_cell(str(g.target or '—'))} | {where} | {_cell(m.shown)} | {m} |")
        return "\n".join(lines)

    def sources_markdown(self) -> str:
        """Where each lecture figure comes from."""
        lines = ["| Lecture | Quantity | Lecture's figure | Source |", "|---|---|---|---|"]
        for row in self.ledger.rows:
            lines.append(f"| {self.ledger.chapter(row.chapter).lecture} | {row.quantity} | "
                         f"{_cell(row.lecture)} | {row.source} |")
        return "\n".join(lines)

    def chapters_markdown(self) -> str:
        """One row per chapter: execution time beside its budget and the share it may use."""
        margin = self.ledger.budget_margin
        lines = [f"| Chapter | Execution time | Budget | Allowed ({margin:.0%}) | Mark |",
                 "|---|---|---|---|---|"]
        for ch in self.ledger.chapters:
            t = self.exec_s.get(ch.doc)
            allowed = Target("<=", ch.budget_s * margin)
            if ch.doc not in self.built:
                shown, mark = "", Mark(NOT_BUILT)
            elif t is None:
                shown, mark = "", Mark(NO_TARGET, "", "no execution time recorded")
            else:
                shown, mark = f"{t:.0f}{NBSP}s", Mark(MET if allowed.met(t) else MISSED)
            lines.append(f"| {ch.doc[:2]} {ch.title} | {shown} | {ch.budget_s:.0f}{NBSP}s | "
                         f"{allowed.value:.0f}{NBSP}s | {mark} |")
        return "\n".join(lines)

    def markdown(self) -> str:
        """Everything, as ``zth scoreboard`` prints it: summary, CPU rows, GPU rows, chapters, runs."""
        parts = [self.summary(), self.ledger_markdown(), self.gpu_markdown(), self.chapters_markdown(),
                 self.runs_markdown()]
        return "\n\n".join(p for p in parts if p).replace(NBSP, " ")

    def runs_markdown(self) -> str:
        """One row per recorded full-configuration run (empty string if there are none)."""
        if not self.runs:
            return ""
        lines = ["| Run | Device | Preset | Steps | Best val loss | Wall time | git |",
                 "|---|---|---|---|---|---|---|"]
        for r in self.runs:
            best, steps = r.best("val_loss", "min"), r.last("step")
            wall = r.info.get("wall_s")
            wall = wall if isinstance(wall, (int, float)) else r.last("elapsed_s")
            git = str(r.info.get("git_revision") or "")[:10]
            lines.append(
                f"| {r.family}/{r.name} | {r.device} | {r.info.get('preset', '')} | "
                f"{'' if steps is None else f'{steps:,.0f}'} | {'' if best is None else f'{best:.4f}'} | "
                f"{'' if wall is None else f'{wall / 60:.1f}{NBSP}min'} | {git} |"
            )
        return "\n".join(lines)


def _cell(text: str) -> str:
    """A table cell whose numbers do not break: spaces after symbols and inside figures are non-breaking."""
    return re.sub(r"(?<=[≈≤≥<>=~±]) |(?<=\d) (?=[\d%±]|s\b|min\b)| (?=±)", NBSP, text)
