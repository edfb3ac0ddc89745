"""Files that appear whole or not at all, and checkpoints that load without running code.

Every file zth writes (downloads, tokenizer files, token shards, exported weights, logs'
metadata, checkpoints) goes through :func:`atomic_path`: the content is written to a temporary
file in the target's folder and renamed over the target only when complete, so an interrupted
write leaves the old file (or none), never half a file.

A checkpoint is a dict of tensors and plain Python values (numbers, strings, lists, dicts)
saved with ``torch.save`` under a format tag and read back with ``torch.load(...,
weights_only=True)``, which refuses anything else: loading a file cannot run code.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CheckpointError", "atomic_path", "load_checkpoint", "save_checkpoint", "write_json",
           "write_text_atomic"]


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, of another format, or does not match its model."""


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it is renamed to ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was. The result
    is readable by everyone (``mkstemp`` alone would make it private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: object) -> Path:
    """``obj`` as indented JSON, written atomically; returns the path."""
    return write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


def save_checkpoint(path: str | os.PathLike, payload: dict, fmt: str) -> Path:
    """``torch.save`` ``payload`` tagged with the format ``fmt`` to ``path``, atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save({"format": fmt, **payload}, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, fmt: str, map_location="cpu") -> dict:
    """Read a checkpoint of format ``fmt`` safely (``weights_only=True``); else ``CheckpointError``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for truncated, foreign or unsafe files
        lines = str(e).strip().splitlines()
        reason = lines[0][:200] if lines else type(e).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise CheckpointError(f"{path} is not a {fmt} checkpoint")
    return ckpt
