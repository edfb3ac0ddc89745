"""What machine is this: the facts a measured number needs beside it.

Used by ``zth doctor`` and by the scoreboard (which says what hardware its numbers were
measured on). Nothing here imports torch unless asked about the accelerator.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["accelerator", "cpu_model", "hardware", "memory_gib"]


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, ``sysctl`` on macOS)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                return value.strip()
    if platform.system() == "Darwin":
        import subprocess

        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            )
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def memory_gib() -> float | None:
    """Total physical memory in GiB, or None where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (AttributeError, ValueError, OSError):
        return None


def accelerator() -> str:
    """The device torch would train on: the CUDA GPU's name, ``"mps"`` or ``"cpu"``."""
    import torch

    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        name = torch.cuda.get_device_name(0)
        return f"{n} x {name}" if n > 1 else name
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def hardware() -> dict[str, object]:
    """CPU model, usable cores, memory, OS and Python version, as a flat dict."""
    mem = memory_gib()
    return {
        "cpu": cpu_model(),
        "cores": _usable_cores(),
        "memory_gib": round(mem, 1) if mem is not None else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
