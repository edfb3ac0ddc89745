"""The course's datasets: where they come from, how they are verified, where they live.

Every dataset comes from a public canonical source and has a pinned sha256. ``path(name)``
looks for it in three places, in order:

1. the directory named by the ``ZTH_DATA_DIR`` environment variable (a read-only
   mirror, e.g. for offline machines and CI);
2. the per-user cache (``ZTH_CACHE_DIR``, else ``$XDG_CACHE_HOME/zth``, else ``~/.cache/zth``);
3. a download into that cache.

Most files are downloaded as published. Two kinds are made from a published file by a
documented function, and the result is what the checksum pins:

* the TinyStories samples, cut from the head of the published TinyStories files
  (:func:`tinystories_sample`; only the head is requested, with an HTTP Range request);
* the HellaSwag copy without WikiHow bracket tags, made from the official validation file
  (:func:`hellaswag_derived`).

A file is used only once its sha256 matches. Downloads stream into a temporary file
beside the target and are renamed into place only after the checksum matched, so a
mismatch or an interrupted download leaves nothing behind. ``ZTH_DATA_URL`` replaces every
source's scheme and host (``$ZTH_DATA_URL/<the URL's path>``): a local mirror of the
canonical sites, as the tests use. tiktoken's GPT-2 and GPT-4 files (:data:`TIKTOKEN_FILES`)
are downloaded the same way into tiktoken's own cache; :func:`tiktoken_encoding` is how zth
asks tiktoken for an encoding.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from zth.storage import atomic_path

__all__ = [
    "TIKTOKEN_FILES", "DataError", "Dataset", "REGISTRY", "cache_dir", "fetch", "fetch_tiktoken",
    "hellaswag_derived", "names", "path", "problems", "shakespeare", "state", "status", "strip_wikihow_tags",
    "text", "tiktoken_cache_dir", "tiktoken_encoding", "tinystories_sample",
]


class DataError(RuntimeError):
    """A dataset could not be found, downloaded or verified."""


@dataclass(frozen=True)
class Dataset:
    """One file of the course, identified by its checksum."""

    name: str
    filename: str  # path relative to the data directory or cache
    url: str | None  # the published file it comes from (None: made from ``source``)
    sha256: str | None
    description: str
    # for files whose publisher gives no checksum we can pin: a structural check
    check: Callable[[Path], None] | None = None
    # a file made from a published one: ``make(stream of the source) -> the file's bytes``
    make: Callable[[BinaryIO], bytes] | None = None
    source: str | None = None  # the dataset ``make`` reads (instead of ``url``)
    head: int | None = None  # bytes of ``url`` to request (HTTP Range) when only its head is used


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


# ---------------------------------------------------------------- files made from published ones
END_OF_STORY = "<|endoftext|>"


def tinystories_sample(stream: BinaryIO, chars: int, separator: str) -> bytes:
    r"""The first stories of a published TinyStories text file, at least ``chars`` characters.

    The published files (``TinyStories-train.txt``, ``TinyStories-valid.txt``) hold one story
    after another, each followed by a line ``<|endoftext|>``. The sample keeps every other line
    as it is (trailing spaces and inner blank lines included) and turns each ``<|endoftext|>``
    line into ``separator`` (``""``: stories separated by one newline, as the train sample;
    ``"\n"``: by a blank line, as the valid sample). It ends at the first story end at or after
    ``chars`` characters. Only the head of ``stream`` is read.
    """
    out: list[str] = []
    size = 0
    for raw in stream:
        line = raw.decode("utf-8")
        if line.rstrip("\r\n") == END_OF_STORY:
            out.append(separator)
            size += len(separator)
            if size >= chars:
                return "".join(out).encode("utf-8")
            continue
        out.append(line)
        size += len(line)
    raise DataError(f"the TinyStories file ended after {size:,} characters, before the sample's "
                    f"{chars:,} (an interrupted download?)")


#: The WikiHow markup of HellaSwag's texts that the derived copy drops.
WIKIHOW_TAGS = re.compile(r"\[(?:header|title|step|substeps)\]")


def strip_wikihow_tags(text: str) -> str:
    """A HellaSwag text without WikiHow's bracket tags, as the derived copy has it.

    ``" [title]"`` becomes ``". "`` (a title ends a sentence), the tags ``[header]``, ``[title]``,
    ``[step]`` and ``[substeps]`` are removed, each double space becomes one (a single pass, as
    lm-evaluation-harness's HellaSwag preprocessing), and the ends are stripped. Other brackets
    (``[insert name]``, links) stay.
    """
    text = text.strip().replace(" [title]", ". ")
    return WIKIHOW_TAGS.sub("", text).replace("  ", " ").strip()


def hellaswag_derived(stream: BinaryIO) -> bytes:
    """The derived HellaSwag copy made from the official ``hellaswag_val.jsonl``.

    One JSON object a line (``json.dumps`` defaults: ASCII, ``", "`` and ``": "``) with the
    fields ``ind`` (the line number, from 0), ``activity_label``, ``ctx``, ``endings`` (4),
    ``label`` (an int) and ``split``; ``ctx`` and ``endings`` pass through
    :func:`strip_wikihow_tags`; ``ctx_a``, ``ctx_b``, ``split_type`` and ``source_id`` are dropped.
    """
    rows = []
    for i, line in enumerate(stream):
        ex = json.loads(line)
        rows.append(json.dumps({
            "ind": i, "activity_label": ex["activity_label"], "ctx": strip_wikihow_tags(ex["ctx"]),
            "endings": [strip_wikihow_tags(e) for e in ex["endings"]], "label": int(ex["label"]),
            "split": ex["split"],
        }))
    return "".join(r + "\n" for r in rows).encode("utf-8")


def _sample(chars: int, separator: str) -> Callable[[BinaryIO], bytes]:
    return lambda stream: tinystories_sample(stream, chars, separator)


_GH = "https://raw.githubusercontent.com/karpathy"
_TS = "https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main"
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
            "HellaSwag validation without WikiHow bracket tags (made from the official file)",
            make=hellaswag_derived, source="hellaswag"),
    Dataset("tinystories_train", "tinystories/tinystories_train_sample.txt", f"{_TS}/TinyStories-train.txt",
            "c56cfd24fb1c542b141a396184b822a4db3672abdb4c49c6aa843171c5e822a5",
            "the first 942,640 characters of TinyStories train (cut from TinyStories-train.txt)",
            make=_sample(942_640, ""), head=1_200_000),
    Dataset("tinystories_valid", "tinystories/tinystories_valid_sample.txt", f"{_TS}/TinyStories-valid.txt",
            "5fc1fb0113df62b567fb271806cd645ce8d75f59c58ca0b764c03d3b6ff34ca6",
            "the first 793,451 characters of TinyStories validation (cut from TinyStories-valid.txt)",
            make=_sample(793_451, "\n"), head=1_000_000),
]}

_BLOB = "https://openaipublic.blob.core.windows.net"
#: The files tiktoken downloads for each encoding the course uses, with their sha256. tiktoken
#: caches each as ``<its cache folder>/<sha1 of the URL>``.
TIKTOKEN_FILES: dict[str, dict[str, str]] = {
    "gpt2": {
        f"{_BLOB}/gpt-2/encodings/main/vocab.bpe":
            "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
        f"{_BLOB}/gpt-2/encodings/main/encoder.json":
            "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    },
    "cl100k_base": {
        f"{_BLOB}/encodings/cl100k_base.tiktoken":
            "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    },
}


def cache_dir() -> Path:
    """The per-user download cache."""
    if os.environ.get("ZTH_CACHE_DIR"):
        return Path(os.environ["ZTH_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zth"


def _mirror_dir() -> Path | None:
    d = os.environ.get("ZTH_DATA_DIR")
    return Path(d).expanduser() if d else None


def tiktoken_cache_dir() -> Path:
    """Where tiktoken looks for and stores its files (same rule as tiktoken itself)."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return Path(os.environ[var])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def problems() -> list[str]:
    """What is wrong with the data settings right now (empty when nothing is)."""
    out = []
    mirror = _mirror_dir()
    if mirror is not None and not mirror.is_dir():
        out.append(f"ZTH_DATA_DIR={mirror} names no folder" + (" (it is a file)" if mirror.exists() else "")
                   + ": it is ignored")
    for what, d in (("the download cache", cache_dir()), ("tiktoken's cache", tiktoken_cache_dir())):
        for parent in (d, *d.parents):
            if parent.exists():
                if not parent.is_dir():
                    out.append(f"{what} {d} cannot be created: {parent} is a file")
                break
    return out


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


class CorruptError(DataError):
    """A local file is there but is not the dataset (checksum or structure)."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


_verified: dict[tuple[str, int, int], None] = {}


def _verify(ds: Dataset, p: Path) -> None:
    """Raise CorruptError unless ``p`` holds exactly ``ds``; remembered per (path, size, mtime)."""
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key in _verified:
        return
    if ds.sha256 is not None:
        got = _sha256(p)
        if got != ds.sha256:
            raise CorruptError(f"{p} has sha256 {got}, expected {ds.sha256} for {ds.name!r}; "
                               f"delete {p}", p)
    if ds.check is not None:
        try:
            ds.check(p)
        except (DataError, ValueError, UnicodeDecodeError) as e:
            raise CorruptError(f"{e}; delete {p}", p) from None
    _verified[key] = None


def _local(ds: Dataset) -> Path | None:
    for root in (_mirror_dir(), cache_dir()):
        if root is not None and (root / ds.filename).is_file():
            p = root / ds.filename
            _verify(ds, p)
            return p
    return None


def _url(url: str) -> str:
    """``url``, or the same path under ``ZTH_DATA_URL`` when that is set."""
    base = os.environ.get("ZTH_DATA_URL")
    return base.rstrip("/") + urllib.parse.urlsplit(url).path if base else url


def _where_to_put(filename: str) -> str:
    mirror = _mirror_dir()
    if mirror is not None and mirror.is_dir():
        return f"put the file at {mirror / filename} (ZTH_DATA_DIR)"
    return f"put the file at {cache_dir() / filename}, or under a folder named by ZTH_DATA_DIR"


def _save(name: str, url: str | None, target: Path, verify: Callable[[Path], None], hint: str,
          make: Callable[[BinaryIO], bytes] | None = None, source: Path | None = None,
          head: int | None = None, timeout: float = 60.0) -> None:
    """Download ``url`` (or read ``source``), pass it through ``make``, verify, then move to ``target``."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot store {name!r}: the folder {target.parent} cannot be created "
                        f"({e.strerror or e}); set ZTH_CACHE_DIR to a writable folder") from None
    url = _url(url) if url else None
    try:
        with atomic_path(target) as tmp:  # the file appears whole and verified, or not at all
            if source is not None:
                with open(source, "rb") as f:
                    tmp.write_bytes(make(f) if make else f.read())
            else:
                headers = {"Range": f"bytes=0-{head - 1}"} if head else {}
                request = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(request, timeout=timeout) as r, open(tmp, "wb") as out:
                    if make is not None:
                        try:
                            out.write(make(r))
                        except DataError as e:
                            raise DataError(f"could not make {name!r} from {url}: {e}; nothing was saved") \
                                from None
                    else:
                        expected = r.headers.get("Content-Length")
                        for block in iter(lambda: r.read(1 << 20), b""):
                            out.write(block)
                        if expected is not None and out.tell() != int(expected):
                            raise DataError(f"download of {name!r} from {url} was interrupted "
                                            f"({out.tell():,} of {int(expected):,} bytes); nothing was saved")
            verify(tmp)
    except CorruptError as e:
        raise DataError(f"{'made' if make else 'downloaded'} {name!r} from {source or url} but it does not "
                        f"match: {str(e).split('; delete')[0]}; nothing was saved") from None
    except urllib.error.HTTPError as e:
        raise DataError(f"could not download {name!r}: {url} answered {e.code} {e.reason}; "
                        f"{hint}") from None
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as e:
        reason = getattr(e, "reason", None) or e
        raise DataError(f"could not download {name!r} from {url} ({type(e).__name__}: {reason}); "
                        f"nothing was saved; offline? {hint}") from None
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"could not make {name!r} from {source or url}: not the expected format "
                        f"({type(e).__name__}: {e}); nothing was saved") from None


def _download(ds: Dataset, target: Path) -> None:
    if ds.url is None and ds.source is None:
        raise DataError(f"{ds.name!r} has no source to download from; {_where_to_put(ds.filename)}")
    source = None
    if ds.source:
        try:
            source = fetch(ds.source)
        except DataError as e:
            why = str(e).split("; ")[0]
            raise DataError(f"{ds.name!r} is made from {ds.source!r}, which failed ({why}); "
                            f"{_where_to_put(ds.filename)}, or the source file at "
                            f"{_where_to_put(REGISTRY[ds.source].filename).split(' at ', 1)[1]}") from None
    _save(ds.name, ds.url, target, lambda p: _verify(ds, p), _where_to_put(ds.filename), ds.make, source,
          ds.head)


def fetch(name: str, force: bool = False) -> Path:
    """Make sure ``name`` is present and verified locally (downloading it if needed)."""
    ds = _dataset(name)
    if not force and (p := _local(ds)) is not None:
        return p
    target = cache_dir() / ds.filename
    try:
        _download(ds, target)
    except DataError as e:
        bad = problems()
        raise DataError(f"{e} [{bad[0]}]" if bad else str(e)) from None
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


def state(name: str) -> tuple[str, Path | None, str]:
    """``(state, path, detail)`` of a dataset, without downloading: ``present``, ``corrupt``
    (a local file fails its checksum: delete it) or ``missing``."""
    ds = _dataset(name)
    try:
        p = _local(ds)
    except CorruptError as e:
        return "corrupt", e.path, f"corrupt (sha mismatch): delete {e.path}" if ds.sha256 else \
            f"corrupt ({str(e).split('; delete')[0]}): delete {e.path}"
    if p is not None:
        return "present", p, str(p)
    how = f"made from {ds.source} on first use" if ds.source else "downloaded on first use"
    return "missing", None, f"missing: {how} (`zth data fetch {name}`)"


def status() -> dict[str, Path | None]:
    """Which datasets are present and verified locally right now (no downloads, no raising)."""
    return {name: state(name)[1] if state(name)[0] == "present" else None for name in REGISTRY}


# ---------------------------------------------------------------- tiktoken's files
def _tiktoken_file(url: str) -> Path:
    return tiktoken_cache_dir() / hashlib.sha1(url.encode()).hexdigest()


def _check_sha(name: str, sha256: str) -> Callable[[Path], None]:
    def check(p: Path) -> None:
        got = _sha256(p)
        if got != sha256:
            raise CorruptError(f"{p} has sha256 {got}, expected {sha256} for {name}; delete {p}", p)
    return check


def tiktoken_state(encoding: str) -> tuple[str, str]:
    """``(state, detail)`` of tiktoken's files for ``encoding``: present, corrupt or missing."""
    files = TIKTOKEN_FILES[encoding]
    for url, sha in files.items():
        p = _tiktoken_file(url)
        if p.is_file():
            try:
                _check_sha(url, sha)(p)
            except CorruptError:
                return "corrupt", f"corrupt (sha mismatch): delete {p}"
    missing = [f"{_tiktoken_file(u).name} ({u.rsplit('/', 1)[1]})" for u in files
               if not _tiktoken_file(u).is_file()]
    if missing:
        return "missing", (f"not cached: tiktoken looks for {', '.join(missing)} in {tiktoken_cache_dir()} "
                           "(TIKTOKEN_CACHE_DIR); `zth data fetch --all` downloads them")
    return "present", f"cached in {tiktoken_cache_dir()}"


def fetch_tiktoken(encoding: str) -> Path:
    """Make sure tiktoken's files for ``encoding`` are in its cache, downloading any missing one."""
    if encoding not in TIKTOKEN_FILES:
        raise DataError(f"unknown tiktoken encoding {encoding!r}; known: {', '.join(TIKTOKEN_FILES)}")
    for url, sha in TIKTOKEN_FILES[encoding].items():
        p = _tiktoken_file(url)
        if p.is_file():
            try:
                _check_sha(url, sha)(p)
                continue
            except CorruptError as e:
                raise DataError(f"tiktoken's {encoding} file is corrupt (sha mismatch): delete {e.path}") \
                    from None
        hint = (f"tiktoken's {encoding!r} encoding needs {p.name} in {p.parent} (TIKTOKEN_CACHE_DIR): run "
                "`zth data fetch --all` where there is internet and copy the folder, or point "
                "TIKTOKEN_CACHE_DIR at a folder holding it")
        _save(f"tiktoken:{encoding}", url, p, _check_sha(url, sha), hint)
    return tiktoken_cache_dir()


def tiktoken_encoding(name: str):
    """``tiktoken.get_encoding(name)``, with its files fetched (and checked) by zth first, so a
    missing file is one clear ``DataError`` naming TIKTOKEN_CACHE_DIR, not an HTTP traceback."""
    import tiktoken

    if name in TIKTOKEN_FILES:
        fetch_tiktoken(name)
    return tiktoken.get_encoding(name)
