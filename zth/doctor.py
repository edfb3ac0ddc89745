"""``zth doctor``: what this installation has and lacks, checked without downloading anything."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import zth
from zth import data, sysinfo

__all__ = ["Check", "checks", "report", "tiktoken_cache_dir"]

tiktoken_cache_dir = data.tiktoken_cache_dir

#: Optional packages worth reporting: (distribution, what needs it).
OPTIONAL = [
    ("jupyter-book", "building the book"),
    ("transformers", "GPT-2 interop tests"),
    ("sentencepiece", "the tokenizer chapter"),
    ("playwright", "the browser test"),
]

Check = tuple[str, bool, str]  # (what, ok, detail)


def _torch() -> list[Check]:
    try:
        import torch
    except ImportError as e:
        return [("torch", False, f"cannot import torch ({e}); pip install torch")]
    device = sysinfo.accelerator()
    extra = f", CUDA {torch.version.cuda}" if torch.version.cuda else ""
    return [
        ("torch", True, f"{torch.__version__}{extra}, {torch.get_num_threads()} threads"),
        ("device", True, f"{device} (what `--device auto` picks)"),
    ]


def _graphviz() -> Check:
    dot = shutil.which("dot")
    if dot is None:
        return (
            "graphviz",
            False,
            "`dot` not on PATH: install Graphviz (apt-get install graphviz, "
            "brew install graphviz) to draw micrograd's graphs",
        )
    try:
        out = subprocess.run([dot, "-V"], capture_output=True, text=True, timeout=10)
        version = (out.stderr or out.stdout).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        version = "version unknown"
    return ("graphviz", True, f"{dot}: {version}")


def _tiktoken() -> list[Check]:
    try:
        version = importlib.metadata.version("tiktoken")
    except importlib.metadata.PackageNotFoundError:
        return [("tiktoken", False, "not installed (pip install tiktoken)")]
    cache = tiktoken_cache_dir()
    set_by = "TIKTOKEN_CACHE_DIR" in os.environ
    how = "TIKTOKEN_CACHE_DIR" if set_by else "default; TIKTOKEN_CACHE_DIR moves it"
    out = [("tiktoken", True, f"{version}; looks for its files in {cache} ({how})")]
    for enc in data.TIKTOKEN_FILES:
        state, detail = data.tiktoken_state(enc)
        out.append((f"tiktoken {enc}", state == "present", detail))
    return out


def _settings() -> list[Check]:
    return [("data settings", False, problem) for problem in data.problems()]


def _datasets() -> list[Check]:
    out = []
    for name in data.REGISTRY:
        state, _, detail = data.state(name)
        out.append((f"data {name}", state == "present", detail))
    return out


def _optional() -> list[Check]:
    out = []
    for dist, why in OPTIONAL:
        try:
            out.append((dist, True, f"{importlib.metadata.version(dist)} ({why})"))
        except importlib.metadata.PackageNotFoundError:
            out.append((dist, False, f"not installed; optional, for {why}"))
    return out


def checks() -> list[Check]:
    """Every check as (what, ok, detail), in the order ``zth doctor`` prints them."""
    hw = sysinfo.hardware()
    mem = f", {hw['memory_gib']} GiB" if hw["memory_gib"] else ""
    return [
        ("python", sys.version_info >= (3, 10), f"{platform.python_version()} at {sys.executable}"),
        ("zth", True, f"{zth.__version__} at {Path(zth.__file__).parent}"),
        ("machine", True, f"{hw['cpu']}, {hw['cores']} cores{mem}, {hw['os']}"),
        *_torch(),
        _graphviz(),
        *_tiktoken(),
        *_settings(),
        *_datasets(),
        *_optional(),
    ]


def report() -> tuple[str, bool]:
    """The report as text, and whether everything required (python, torch) is in order."""
    rows = checks()
    width = max(len(what) for what, _, _ in rows)
    lines = [f"{'ok ' if ok else '-- '} {what:<{width}}  {detail}" for what, ok, detail in rows]
    required = {"python", "torch"}
    healthy = all(ok for what, ok, _ in rows if what in required)
    return "\n".join(lines), healthy
