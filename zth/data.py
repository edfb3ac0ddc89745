"""The course's datasets: where they come from, how they are verified, where they live.

Every dataset has a canonical URL and a sha256. ``path(name)`` looks for it in three
places, in order:

1. the directory named by the ``ZTH_DATA_DIR`` environment variable (a read-only
   mirror, e.g. for offline machines and CI);
2. the per-user cache (``ZTH_CACHE_DIR``, else ``$XDG_CACHE_HOME/zth``, else ``~/.cache/zth``);
3. a download into that cache.

A file is used only once its sha256 matches. Downloads stream into a temporary file
beside the target and are renamed into place only after the checksum matched, so a
mismatch or an interrupted download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zth.storage import atomic_path

__all__ = [
    "DataError", "Dataset", "REGISTRY", "cache_dir", "fetch", "names", "path",
    "shakespeare", "status", "text",
]


class DataError(RuntimeError):
    """A dataset could not be found, downloaded or verified."""


@dataclass(frozen=True)
class Dataset:
    """One file of the course, identified by its checksum."""

    name: str
    filename: str  # path relative to the data directory or cache
    url: str | None
    sha256: str | None
    description: str
    # for files whose publisher gives no checksum we can pin: a structural check
    check: Callable[[Path], None] | None = None


def _check_hellaswag(p: Path) -> None:
    """The official HellaSwag val file: 10,042 JSON lines with ctx/endings/label."""
    n = 0
    with open(p, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if not {"ctx", "endings", "label"} <= row.keys() or len(row["endings"]) != 4:
                raise DataError(f"{p}: line {n + 1} is not a HellaSwag example")
            n += 1
    if n != 10042:
        raise DataError(f"{p}: expected 10,042 HellaSwag examples, found {n}")


_GH = "https://raw.githubusercontent.com/karpathy"
REGISTRY: dict[str, Dataset] = {d.name: d for d in [
    Dataset("names", "names.txt", f"{_GH}/makemore/master/names.txt",
            "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d",
            "makemore's 32,033 names"),
    Dataset("shakespeare", "tinyshakespeare.txt",
            f"{_GH}/char-rnn/master/data/tinyshakespeare/input.txt",
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            "tiny Shakespeare, 1,115,394 characters"),
    Dataset("taylorswift", "taylorswift.txt", f"{_GH}/minbpe/master/tests/taylorswift.txt",
            "c2e39cb822d4ae0caac22152cefc306d466e31217a9c5524e493ad2b76792f57",
            "the Wikipedia article minbpe trains on"),
    Dataset("hellaswag", "hellaswag/hellaswag_val.jsonl",
            "https://raw.githubusercontent.com/rowanz/hellaswag/master/data/hellaswag_val.jsonl",
            None, "HellaSwag validation, official file (10,042 examples)", _check_hellaswag),
    Dataset("hellaswag_derived", "hellaswag/hellaswag_val_derived.jsonl", None,
            "23111779dad3903da804f7356c382e282a43e729cffad6a6f30d02e51cf3d440",
            "HellaSwag validation rebuilt without WikiHow bracket tags (offline mirrors only)"),
    Dataset("tinystories_train", "tinystories/tinystories_train_sample.txt", None,
            "c56cfd24fb1c542b141a396184b822a4db3672abdb4c49c6aa843171c5e822a5",
            "the first ~942k characters of TinyStories train (offline mirrors only)"),
    Dataset("tinystories_valid", "tinystories/tinystories_valid_sample.txt", None,
            "5fc1fb0113df62b567fb271806cd645ce8d75f59c58ca0b764c03d3b6ff34ca6",
            "the first ~793k characters of TinyStories validation (offline mirrors only)"),
]}


def cache_dir() -> Path:
    """The per-user download cache."""
    if os.environ.get("ZTH_CACHE_DIR"):
        return Path(os.environ["ZTH_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zth"


def _mirror_dir() -> Path | None:
    d = os.environ.get("ZTH_DATA_DIR")
    return Path(d).expanduser() if d else None


def _dataset(name: str) -> Dataset:
    try:
        return REGISTRY[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}") from None


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_verified: dict[tuple[str, int, int], None] = {}


def _verify(ds: Dataset, p: Path) -> None:
    """Raise DataError unless ``p`` holds exactly ``ds``; remembered per (path, size, mtime)."""
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key in _verified:
        return
    if ds.sha256 is not None:
        got = _sha256(p)
        if got != ds.sha256:
            raise DataError(f"{p} has sha256 {got}, expected {ds.sha256} for {ds.name!r}; "
                            "delete it or fix ZTH_DATA_DIR")
    if ds.check is not None:
        ds.check(p)
    _verified[key] = None


def _local(ds: Dataset) -> Path | None:
    for root in (_mirror_dir(), cache_dir()):
        if root is not None and (root / ds.filename).is_file():
            p = root / ds.filename
            _verify(ds, p)
            return p
    return None


def _download(ds: Dataset, target: Path, timeout: float = 60.0) -> None:
    try:
        with atomic_path(target) as tmp:  # the file appears whole and verified, or not at all
            with open(tmp, "wb") as out, urllib.request.urlopen(ds.url, timeout=timeout) as r:
                expected = r.headers.get("Content-Length")
                for block in iter(lambda: r.read(1 << 20), b""):
                    out.write(block)
                if expected is not None and out.tell() != int(expected):
                    raise DataError(f"download of {ds.name!r} from {ds.url} was interrupted "
                                    f"({out.tell():,} of {int(expected):,} bytes); nothing was saved")
            _verify(ds, tmp)
    except (urllib.error.URLError, OSError) as e:
        raise DataError(f"could not download {ds.name!r} from {ds.url} ({e}); you seem to be "
                        f"offline: put {ds.filename} in a folder and point ZTH_DATA_DIR at it") from None


def fetch(name: str, force: bool = False) -> Path:
    """Make sure ``name`` is present and verified locally (downloading it if needed)."""
    ds = _dataset(name)
    if not force and (p := _local(ds)) is not None:
        return p
    if ds.url is None:
        where = f"ZTH_DATA_DIR={_mirror_dir()}" if _mirror_dir() else "ZTH_DATA_DIR is not set"
        raise DataError(f"{name!r} ({ds.filename}) is distributed with offline mirrors only and was "
                        f"not found ({where}); point ZTH_DATA_DIR at a folder holding it")
    target = cache_dir() / ds.filename
    _download(ds, target)
    return target


def path(name: str) -> Path:
    """The local, verified path of dataset ``name``, downloaded on first use."""
    return fetch(name)


def text(name: str) -> str:
    """The dataset's contents as text (UTF-8)."""
    return path(name).read_text(encoding="utf-8")


def names() -> list[str]:
    """makemore's 32,033 names, lowercase, in file order."""
    return text("names").splitlines()


def shakespeare() -> str:
    """Tiny Shakespeare: 1,115,394 characters."""
    return text("shakespeare")


def status() -> dict[str, Path | None]:
    """Which datasets are present locally right now (no downloads, no raising)."""
    out: dict[str, Path | None] = {}
    for name, ds in REGISTRY.items():
        try:
            out[name] = _local(ds)
        except DataError:
            out[name] = None
    return out
