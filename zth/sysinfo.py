"""What machine is this: the facts a measured number needs beside it.

Used by ``zth doctor``, by the scoreboard (which says what hardware its numbers were measured
on), and by the training commands, which pick their device here and record its name and the
git revision in each run's metadata. Nothing here imports torch unless asked about a device.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

__all__ = ["accelerator", "cpu_model", "device_name", "git_revision", "hardware", "memory_gib", "pick_device",
           "usable_cores"]


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, ``sysctl`` on macOS)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                return value.strip()
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            )
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; the machine's count elsewhere)."""
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


def pick_device(name: str = "auto"):
    """``"auto"``: CUDA if available, then Apple's MPS, then the CPU; otherwise the named device,
    checked (a ``torch.device``; ``ValueError`` for an unknown or unavailable one)."""
    import torch

    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    if device.type == "mps" and not mps:
        raise ValueError(f"device {name!r} requested but MPS is not available")
    return device


def device_name(device="cpu") -> str:
    """A human-readable name of ``device``: the GPU's model, or the CPU's with torch's thread count."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    return f"CPU ({cpu_model()}, {torch.get_num_threads()} threads)"


def git_revision() -> str | None:
    """The commit zth runs from (``+dirty`` with uncommitted changes): ``$ZTH_GIT_REV`` if set (a
    copy of the tree without ``.git``), else ``git`` asked in the package's folder or the current
    one; None when neither is a checkout."""
    if os.environ.get("ZTH_GIT_REV"):
        return os.environ["ZTH_GIT_REV"]
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


def hardware() -> dict[str, object]:
    """CPU model, usable cores, memory, OS and Python version, as a flat dict."""
    mem = memory_gib()
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "memory_gib": round(mem, 1) if mem is not None else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
