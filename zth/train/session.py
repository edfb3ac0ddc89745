"""A run's folder and its record: ``run.json``, the output-folder checks, and Ctrl-C.

``run.json`` is written when a run starts (``status: running``) and again when it ends
(``finished``, ``interrupted`` or ``diverged``), atomically. It holds the command, the preset,
the device, the torch version, the git revision, start and end times, the wall time, the
resolved configuration, the parameter count and the results; a resumed run keeps the earlier
sessions' command, device, revision and times under ``sessions``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import torch

from zth.storage import write_json
from zth.sysinfo import device_name, git_revision
from zth.train.config import ConfigError, RunConfig

__all__ = ["RunExists", "RunRecord", "check_out_dir", "stop_on_sigint"]


class RunExists(FileExistsError):
    """The output folder already holds a run (resume it or choose another folder)."""


def check_out_dir(out: str | Path | None, resume: bool) -> None:
    """Refuse an output folder that is a file, cannot be written, or already holds a run
    (unless resuming it; resuming needs a ``last.pt``). Nothing is written."""
    if out is None:
        if resume:
            raise ConfigError("--resume needs the run's output folder (--out DIR)")
        return
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} is a file, not a folder")
    existing = next((p for p in out.parents if p.exists()), None) if not out.exists() else out
    if existing is not None and not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise ConfigError(f"cannot write to {existing}")
    holds_run = (out / "last.pt").exists() or (out / "run.json").exists()
    if resume and not (out / "last.pt").is_file():
        raise ConfigError(f"nothing to resume: {out} holds no last.pt")
    if not resume and holds_run:
        raise RunExists(f"{out} already holds a run: resume it (--resume) or choose another output folder")


_SESSION_KEYS = ("command", "device", "git_revision", "started_at", "wall_s", "status")


class RunRecord:
    """The ``run.json`` of one run folder (or nothing, when there is no folder)."""

    def __init__(self, out: Path | None, config: RunConfig, command: str | None, preset: str | None, dist):
        self.out, self.config, self.dist = out, config, dist
        self.info: dict = {"command": command, "preset": preset}

    def start(self, resume: bool, model: torch.nn.Module) -> None:
        """Record the start of a session (and keep the earlier sessions' details when resuming)."""
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.info.update(device=device_name(self.dist.device), world_size=self.dist.world_size,
                         torch=torch.__version__, cuda=torch.version.cuda, git_revision=git_revision(),
                         started_at=started, status="running", config=self.config.to_dict(),
                         params=sum(p.numel() for p in dict.fromkeys(model.parameters())))
        if self.out is None:
            return
        if resume and (self.out / "run.json").is_file():
            try:
                previous = json.loads((self.out / "run.json").read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                previous = {}
            self.info["sessions"] = previous.get("sessions", []) + [
                {k: previous.get(k) for k in _SESSION_KEYS}]
        write_json(self.out / "run.json", self.info)

    def finish(self, status: str, result) -> None:
        """Record how the session ended and the run's results."""
        self.info.update(status=status, finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         wall_s=round(result.elapsed_s, 2),
                         results={"step": result.step, "best_val_loss": _finite(result.best_val_loss),
                                  "best_step": result.best_step, "final_val_loss": result.final.get("val"),
                                  "final_train_loss": result.final.get("train"),
                                  "tokens_per_s": round(result.tokens_per_s, 1)})
        if self.out is not None:
            write_json(self.out / "run.json", self.info)


def _finite(x: float) -> float | None:
    return x if x == x and abs(x) != float("inf") else None


class _Stop:
    requested = False


@contextmanager
def stop_on_sigint():
    """Turn the first Ctrl-C into a request to stop after the current step (a second one
    interrupts at once). Outside the main thread, nothing is installed."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
