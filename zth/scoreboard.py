"""The scoreboard: every chapter's headline numbers beside the lecture's, with a mark.

Nothing here is typed in by hand except the registry below (what to look for, the lecture's
figure, the target). The measured numbers come from where the book left them:

* the chapters' ``glue`` outputs, which myst-nb writes to ``<docname>.glue.json`` in its
  output folder (``_build/jupyter_execute`` by default);
* each chapter's execution time, written beside them as ``<docname>.exec.json`` by the book's
  extension (``book/_ext/zth_book.py``);
* full-configuration runs in ``results/<family>/<run>/``: a ``run.json`` (``device``,
  ``command``, ``git_rev``, ``preset``, ...) and a ``metrics.jsonl`` of JSON lines (``step``,
  ``val_loss``, ``tokens_per_s``, ``elapsed``, ...) as the training commands write them.

A chapter that has not been built yet is listed as such; a run folder that does not exist
adds nothing. ``zth scoreboard`` prints the same tables in a terminal.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from zth.runs import Run, read_runs

__all__ = [
    "CHAPTERS",
    "HEADLINES",
    "Chapter",
    "GpuMetric",
    "Headline",
    "Scoreboard",
    "Target",
    "parse_number",
]


@dataclass(frozen=True)
class Target:
    """A goal for a number: ``op`` is ``"<="``, ``">="`` or ``"=="`` (within ``tol``)."""

    op: str
    value: float
    tol: float = 0.0
    label: str | None = None  # how to show it, when the plain ``op value`` would mislead

    def met(self, x: float) -> bool:
        """Whether ``x`` meets the target."""
        if self.op == "<=":
            return x <= self.value + self.tol
        if self.op == ">=":
            return x >= self.value - self.tol
        if self.op == "==":
            return abs(x - self.value) <= self.tol
        raise ValueError(f"unknown target operator {self.op!r}")

    def __str__(self) -> str:
        if self.label:
            return self.label
        sym = {"<=": "≤", ">=": "≥", "==": "="}[self.op]
        value = (
            f"{self.value:,}"
            if float(self.value).is_integer() and abs(self.value) >= 1000
            else f"{self.value:g}"
        )
        return f"{sym} {value}" + (f" ± {self.tol:g}" if self.op == "==" and self.tol else "")


@dataclass(frozen=True)
class GpuMetric:
    """A number read from the full-configuration runs in ``results/<family>/``."""

    family: str
    names: tuple[str, ...]  # metric names in metrics.jsonl, first found wins
    best: str = "min"  # "min" or "max" over the log
    target: Target | None = None


@dataclass(frozen=True)
class Chapter:
    """A chapter of the book: its document name, short title and execution budget."""

    doc: str
    title: str
    budget_s: float


@dataclass(frozen=True)
class Headline:
    """One row: a glued key (or a GPU-only number), the lecture's figure and the target."""

    doc: str
    what: str
    key: str | None = None
    lecture: str = "—"
    target: Target | None = None
    gpu: GpuMetric | None = None


# fmt: off
CHAPTERS: list[Chapter] = [
    Chapter("01_micrograd", "micrograd", 180), Chapter("02_bigram", "bigram", 180),
    Chapter("03_mlp", "MLP", 180), Chapter("04_batchnorm", "BatchNorm", 180),
    Chapter("05_backprop_ninja", "backprop ninja", 180), Chapter("06_wavenet", "WaveNet", 180),
    Chapter("07_gpt", "GPT", 300), Chapter("08_tokenizer", "tokenizer", 180),
    Chapter("09_gpt2", "GPT-2", 300), Chapter("10_llama", "Llama 2", 300),
]

_VAL = ("val_loss", "val")
#: Every headline number, in one place: (chapter, what, glue key, the lecture's figure, target, GPU metric).
HEADLINES: list[Headline] = [
    Headline("01_micrograd", "moons: final loss", "micrograd_moons_loss", "0.010978 (micrograd 0.1.0)",
             Target("==", 0.010978, 5e-7, "= 0.010978 (6 decimals)")),
    Headline("01_micrograd", "moons: final accuracy", "micrograd_moons_acc", "100%",
             Target(">=", 1.0, label="100%")),
    Headline("02_bigram", "counting bigram NLL", "bigram_nll", "2.4540",
             Target("==", 2.4540, 5e-5, "= 2.4540 (4 decimals)")),
    Headline("02_bigram", "… with add-one smoothing", "bigram_nll_smoothed", "2.4546",
             Target("==", 2.4546, 5e-5, "= 2.4546 (4 decimals)")),
    Headline("02_bigram", "neural bigram NLL", "bigram_nn_nll", "≈ counting model",
             Target("<=", 2.4640, label="≤ 2.464 (counting + 0.01)")),
    Headline("02_bigram", "trigram test NLL (E03)", "trigram_test_nll", "—",
             Target("<=", 2.4540, label="≤ 2.454 (beats the bigram)")),
    Headline("03_mlp", "MLP train loss", "mlp_train_loss", "2.1260"),
    Headline("03_mlp", "MLP dev loss", "mlp_dev_loss", "2.1701", Target("<=", 2.12)),
    Headline("03_mlp", "MLP test loss", "mlp_test_loss"),
    Headline("04_batchnorm", "BatchNorm MLP val loss", "bn_val_loss", "2.1048"),
    Headline("05_backprop_ninja", "manual-backprop val loss", "ninja_val_loss", "2.1099"),
    Headline("06_wavenet", "WaveNet val loss", "wavenet_val_loss", "1.993", Target("<=", 1.993)),
    Headline("06_wavenet", "WaveNet parameters", "wavenet_params", "76,579",
             Target("==", 76579)),
    Headline("07_gpt", "GPT val loss (CPU `book` preset)", "gpt_val_loss", "1.48 (full config, GPU)",
             Target("<=", 1.70),
             GpuMetric("gpt", _VAL, "min", Target("<=", 1.485, label="≈ 1.48 or better"))),
    Headline("07_gpt", "GPT parameters (`book` preset)", "gpt_params", "10,788,929 (full config)"),
    Headline("08_tokenizer", "texts equal to tiktoken (GPT-4)", "gpt4_parity_texts", "—",
             Target(">=", 1, label="all, ≥ 1")),
    Headline("08_tokenizer", "fast / reference trainer, vocab 300 (≥ 100x at 512: benchmarks/)",
             "train_speedup", "—"),
    Headline("08_tokenizer", "fast trainer, vocab 10,000, GPT-4 split, s", "train_10k_regex_seconds", "—",
             Target("<=", 1.0, label="< 1 s")),
    Headline("08_tokenizer", "fast trainer, vocab 10,000, no split, s", "train_10k_basic_seconds", "—",
             Target("<=", 1.0, label="< 1 s")),
    Headline("09_gpt2", "GPT-2 124M parameters", "gpt2_params", "124,439,808", Target("==", 124439808)),
    Headline("09_gpt2", "`tiny` preset val loss", "gpt2_tiny_val_loss"),
    Headline("09_gpt2", "124M tokens/s (CPU here; GPU run)", "gpt2_cpu_tokens_per_s",
             gpu=GpuMetric("gpt2", ("tokens_per_s", "tok_per_s"), "max")),
    Headline("09_gpt2", "124M val loss (GPU run)", gpu=GpuMetric("gpt2", _VAL, "min")),
    Headline("09_gpt2", "124M HellaSwag (GPU run)",
             gpu=GpuMetric("gpt2", ("hellaswag_acc", "hellaswag"), "max")),
    Headline("09_gpt2", "124M MFU (GPU run)", gpu=GpuMetric("gpt2", ("mfu",), "max", Target(">=", 0.5))),
    Headline("10_llama", "Llama val loss (TinyStories)", "llama_val_loss", "—",
             gpu=GpuMetric("llama", _VAL, "min")),
    Headline("10_llama", "Llama parameters", "llama_params", "260K (llama2.c's smallest)"),
]
# fmt: on

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
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    m = _NUMBER.search(value)
    if m is None:
        return None
    x = float(m.group().replace(",", ""))
    rest = value[m.end() :].lstrip()
    return x / 100 if rest.startswith("%") else x


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


def _mark(target: Target | None, value: float | None) -> str:
    if target is None or value is None:
        return ""
    return "✓ met" if target.met(value) else "✗ missed"


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


@dataclass
class Scoreboard:
    """What the book's build and the results folder hold, ready to print as Markdown tables."""

    glue: dict[str, tuple[str, str]]  # key -> (doc, text/plain)
    built: set[str]  # doc stems that have an executed notebook
    exec_s: dict[str, float]  # doc stem -> execution seconds
    runs: list[Run] = field(default_factory=list)

    @classmethod
    def from_build(cls, build: str | Path | None = None, results: str | Path | None = None) -> Scoreboard:
        """Read ``build`` (myst-nb's output folder; default ``$ZTH_BOOK_OUTPUT`` or
        ``_build/jupyter_execute``) and ``results`` (default ``$ZTH_RESULTS_DIR`` or ``results``)."""
        build = Path(build or os.environ.get("ZTH_BOOK_OUTPUT") or "_build/jupyter_execute")
        results = Path(results or os.environ.get("ZTH_RESULTS_DIR") or "results")
        glue: dict[str, tuple[str, str]] = {}
        built, exec_s = set(), {}
        for nb in sorted(build.glob("**/*.ipynb")):
            built.add(nb.stem)
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
        return cls(glue, built, exec_s, read_runs(results))

    def value(self, key: str) -> float | None:
        """The parsed number glued under ``key`` (None if absent or not a number)."""
        return parse_number(self.glue[key][1]) if key in self.glue else None

    def chapters_markdown(self) -> str:
        """One row per registered chapter: built or not, execution time against its budget."""
        lines = ["| Chapter | Execution time | Budget | Within budget |", "|---|---|---|---|"]
        for ch in CHAPTERS:
            if ch.doc not in self.built:
                lines.append(f"| {ch.doc[:2]} {ch.title} | not yet built | {ch.budget_s:.0f} s | |")
                continue
            t = self.exec_s.get(ch.doc)
            shown = f"{t:.0f} s" if t is not None else "unknown"
            lines.append(
                f"| {ch.doc[:2]} {ch.title} | {shown} | {ch.budget_s:.0f} s | "
                f"{_mark(Target('<=', ch.budget_s), t)} |"
            )
        return "\n".join(lines)

    def _gpu_cell(self, h: Headline) -> tuple[str, str]:
        if h.gpu is None:
            return "", ""
        found = [
            (r, v)
            for r in self.runs
            if r.family == h.gpu.family and (v := r.best(h.gpu.names, h.gpu.best)) is not None
        ]
        if not found:
            return "", ""
        run, value = (min if h.gpu.best == "min" else max)(found, key=lambda rv: rv[1])
        return f"{_fmt(value)} ({run.device})", _mark(h.gpu.target, value)

    def headlines_markdown(self) -> str:
        """The headline numbers of every built chapter, with the lecture's figure and a mark."""
        with_gpu = any(self._gpu_cell(h)[0] for h in HEADLINES)
        head = "| Chapter | Measure | zth (this build) | Lecture | Target | Mark |"
        rule = "|---|---|---|---|---|---|"
        if with_gpu:
            head += " GPU full run | GPU target | GPU mark |"
            rule += "---|---|---|"
        lines = [head, rule]
        titles = {c.doc: c.title for c in CHAPTERS}
        for h in HEADLINES:
            gpu_value, gpu_mark = self._gpu_cell(h)
            if h.doc not in self.built and not gpu_value:
                continue
            if h.key is None:
                ours, mark = "(GPU only)", ""
            elif h.key in self.glue:
                ours, mark = _show(self.glue[h.key][1]), _mark(h.target, self.value(h.key))
            elif h.doc in self.built:
                ours, mark = f"`{h.key}` not glued", "✗ missing" if h.target else ""
            else:
                ours, mark = "not yet built", ""
            row = (
                f"| {h.doc[:2]} {titles.get(h.doc, h.doc)} | {h.what} | {ours} | {h.lecture} | "
                f"{h.target or '—'} | {mark} |"
            )
            if with_gpu:
                gpu_target = h.gpu.target if h.gpu and h.gpu.target else "—"
                row += f" {gpu_value} | {gpu_target if h.gpu else ''} | {gpu_mark} |"
            lines.append(row)
        return "\n".join(lines)

    def runs_markdown(self) -> str:
        """One row per recorded full-configuration run (empty string if there are none)."""
        if not self.runs:
            return ""
        lines = [
            "| Run | Device | Preset | Steps | Best val loss | Wall time | git |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.runs:
            best = r.best(_VAL, "min")
            steps = r.last("step")
            elapsed = r.last("elapsed")
            git = str(r.info.get("git_rev") or r.info.get("git_revision") or "")[:10]
            lines.append(
                f"| {r.family}/{r.name} | {r.device} | {r.info.get('preset', '')} | "
                f"{'' if steps is None else f'{steps:,}'} | {'' if best is None else f'{best:.4f}'} | "
                f"{'' if elapsed is None else f'{elapsed / 60:.1f} min'} | {git} |"
            )
        return "\n".join(lines)
