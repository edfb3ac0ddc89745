"""Where a run happens and what it records: the device, the metrics log, the run's metadata.

A run given an output folder writes ``metrics.jsonl`` (one JSON object per line: ``step``,
``kind`` = ``"train"`` or ``"eval"``, losses, ``lr``, ``tokens_per_s``, ``elapsed_s``) and
``run.json`` (command, device, git revision, start time, wall time, configuration, results).
The book reads the first with ``read_metrics``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA if available, then MPS, then CPU; otherwise the named device, checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' requested but MPS is not available")
    return device


def amp_dtype(device: torch.device, dtype: str) -> torch.dtype | None:
    """The autocast dtype for a config's ``dtype`` on ``device`` (None: plain float32)."""
    if dtype == "float32":
        return None
    if dtype == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():  # "auto"
        return torch.bfloat16
    return None


def device_name(device: torch.device) -> str:
    """A human-readable name: the GPU's model, or the CPU's with the thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {cpu}, {torch.get_num_threads()} threads"


def git_revision() -> str | None:
    """The commit of the source tree zth runs from (``+dirty`` with uncommitted changes), if any."""
    for where in (Path(__file__).resolve().parent, Path.cwd()):
        try:
            rev = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True,
                                 text=True, timeout=10)
            if rev.returncode != 0:
                continue
            dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10)
            return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
        except (OSError, subprocess.SubprocessError):
            return None
    return None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; these are ordinary results
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_json(path: Path, obj: dict) -> None:
    """``obj`` as indented JSON, written atomically."""
    write_atomic(path, json.dumps(obj, indent=2) + "\n")


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` and flushes it at once."""

    def __init__(self, path: Path, keep_until_step: int | None = None):
        """Open ``path``; when resuming, drop the records logged after ``keep_until_step``."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if keep_until_step is None:
            write_atomic(self.path, "")
        else:
            kept = [r for r in read_metrics(self.path) if r["step"] <= keep_until_step]
            write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(record) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_metrics(path: Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` (a torn last line, from a killed run, is skipped)."""
    records = []
    if not Path(path).is_file():
        return records
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def split_metrics(records: Iterable[dict]) -> tuple[list[dict], list[dict]]:
    """(train records, eval records) of a metrics log."""
    records = list(records)
    return [r for r in records if r.get("kind") == "train"], [r for r in records if r.get("kind") == "eval"]


__all__ = ["MetricsLog", "amp_dtype", "device_name", "git_revision", "pick_device", "read_metrics",
           "split_metrics", "write_atomic", "write_json"]
