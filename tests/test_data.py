"""zth.data: lookup order, checksum verification, atomic downloads, clear offline errors."""

import hashlib
import http.server
import io
import json
import os
import re
import threading
import urllib.parse
from pathlib import Path

import pytest

from zth import data


def test_names_and_shakespeare():
    names = data.names()
    assert len(names) == 32033
    assert names[:3] == ["emma", "olivia", "ava"]
    text = data.shakespeare()
    assert len(text) == 1115394
    assert len(set(text)) == 65


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(data.DataError, match="unknown dataset 'nope'"):
        data.path("nope")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Empty mirror and cache folders, and a fake dataset whose URL we control."""
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    mirror.mkdir()
    monkeypatch.setenv("ZTH_DATA_DIR", str(mirror))
    monkeypatch.setenv("ZTH_CACHE_DIR", str(cache))
    payload = b"hello, zth\n" * 1000
    ds = data.Dataset("fake", "sub/fake.txt", None, hashlib.sha256(payload).hexdigest(), "test")
    monkeypatch.setitem(data.REGISTRY, "fake", ds)
    return mirror, cache, payload


class _Server:
    """Serves ``body`` on 127.0.0.1; ``truncate`` announces more bytes than it sends."""

    def __init__(self, body: bytes, truncate: bool = False):
        outer = self
        self.body, self.truncate = body, truncate

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.body) + (100 if outer.truncate else 0)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/fake.txt"

    def close(self):
        self.httpd.shutdown()


def _with_url(url, monkeypatch):
    ds = data.REGISTRY["fake"]
    monkeypatch.setitem(data.REGISTRY, "fake", data.Dataset(ds.name, ds.filename, url, ds.sha256, ""))


def test_mirror_is_used_and_verified(sandbox):
    mirror, cache, payload = sandbox
    (mirror / "sub").mkdir()
    (mirror / "sub" / "fake.txt").write_bytes(payload)
    assert data.path("fake") == mirror / "sub" / "fake.txt"
    (mirror / "sub" / "fake.txt").write_bytes(payload + b"tampered")
    with pytest.raises(data.DataError, match="sha256"):
        data.path("fake")


def test_download_verifies_and_writes_atomically(sandbox, monkeypatch):
    mirror, cache, payload = sandbox
    server = _Server(payload)
    try:
        _with_url(server.url, monkeypatch)
        p = data.path("fake")
        assert p == cache / "sub" / "fake.txt" and p.read_bytes() == payload
        assert [f.name for f in p.parent.iterdir()] == ["fake.txt"]  # no temporary left over
        server.body = b"something else"
        p.unlink()
        with pytest.raises(data.DataError, match="sha256"):
            data.path("fake")
        assert list(p.parent.iterdir()) == []  # a bad download leaves nothing behind
    finally:
        server.close()


def test_interrupted_download_leaves_nothing(sandbox, monkeypatch):
    mirror, cache, payload = sandbox
    server = _Server(payload, truncate=True)
    try:
        _with_url(server.url, monkeypatch)
        with pytest.raises(data.DataError, match="interrupted"):
            data.path("fake")
        assert not any((cache / "sub").iterdir())
    finally:
        server.close()


def test_offline_error_names_url_and_env_var(sandbox, monkeypatch):
    _with_url("http://127.0.0.1:9/unreachable.txt", monkeypatch)  # port 9: nothing listens
    with pytest.raises(data.DataError) as e:
        data.path("fake")
    msg = str(e.value)
    assert "http://127.0.0.1:9/unreachable.txt" in msg and "ZTH_DATA_DIR" in msg
    assert "\n" not in msg


def test_mirror_only_dataset_missing(sandbox):
    with pytest.raises(data.DataError, match="ZTH_DATA_DIR"):
        data.path("fake")  # url None and not in the (empty) mirror


def test_status_reports_presence(sandbox):
    mirror, cache, payload = sandbox
    assert data.status()["fake"] is None
    (cache / "sub").mkdir(parents=True)
    (cache / "sub" / "fake.txt").write_bytes(payload)
    assert data.status()["fake"] == cache / "sub" / "fake.txt"


def test_hellaswag_structural_check(tmp_path):
    bad = tmp_path / "h.jsonl"
    bad.write_text('{"ctx": "a", "endings": ["1", "2", "3", "4"], "label": 0}\n')
    with pytest.raises(data.DataError, match="10,042"):
        data.REGISTRY["hellaswag"].check(bad)


def test_every_mirrored_file_matches_its_checksum():
    present = {k: v for k, v in data.status().items() if v is not None}
    assert {"names", "shakespeare", "taylorswift"} <= present.keys()
    for name, p in present.items():
        assert isinstance(p, Path) and p.is_file(), name


# ---------------------------------------------------------------- the real download path, from 127.0.0.1
MIRROR = Path(os.environ.get("ZTH_DATA_DIR", "")) if os.environ.get("ZTH_DATA_DIR") else None
needs_mirror = pytest.mark.skipif(
    MIRROR is None or not (MIRROR / "tinystories").is_dir() or not (MIRROR / "tiktoken_cache").is_dir(),
    reason="needs the full offline mirror in ZTH_DATA_DIR")
EXTRA_STORY = "Another story that comes after the sample.\n"


def published_tinystories(sample: bytes, blank_line: bool) -> bytes:
    """The published TinyStories format (each story followed by a line <|endoftext|>) whose cut is
    ``sample``: the inverse of ``tinystories_sample``, plus stories after the cut."""
    text = sample.decode("utf-8")
    if blank_line:  # stories end at blank lines
        stories = text[:-2].split("\n\n")
    else:  # stories end at single newlines between two non-newlines
        stories = re.split(r"(?<=[^\n])\n(?=[^\n])", text[:-1])
    return "".join(f"{s}\n<|endoftext|>\n" for s in [*stories, *[EXTRA_STORY] * 300]).encode("utf-8")


def official_hellaswag(derived: bytes) -> bytes:
    """An official-format HellaSwag file (all fields, WikiHow tags) that derives to ``derived``."""
    out = []
    for n, line in enumerate(derived.decode("utf-8").splitlines()):
        row = json.loads(line)
        ctx = row["ctx"].replace("  ", " [step]  ")
        if ctx.startswith("How to"):
            ctx = "[header] " + ctx
        endings = [e.replace("  ", " [step]  ") for e in row["endings"]]
        out.append(json.dumps({"ind": 24 + 3 * n, "activity_label": row["activity_label"], "ctx_a": ctx,
                               "ctx_b": "", "ctx": ctx, "split": "val", "split_type": "indomain",
                               "label": row["label"], "endings": endings, "source_id": f"x~{n}"}))
    return ("\n".join(out) + "\n").encode("utf-8")


class Site:
    """A local copy of the canonical sites on 127.0.0.1: URL path -> bytes. Honours Range
    requests; ``cut`` (a path) announces the whole body but sends half of it, then hangs up."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.cut, self.requests = files, None, []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append((self.path, self.headers.get("Range")))
                body = site.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                m = re.fullmatch(r"bytes=0-(\d+)", self.headers.get("Range") or "")
                if m:
                    body = body[:int(m.group(1)) + 1]
                self.send_response(206 if m else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 2] if self.path == site.cut else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


@pytest.fixture
def site(tmp_path, monkeypatch):
    """The canonical sources of every dataset and tiktoken file, served from the mirror's bytes;
    empty cache folders, no mirror."""
    files = {}
    for name in ("names", "shakespeare", "taylorswift"):
        files[_path(data.REGISTRY[name].url)] = (MIRROR / data.REGISTRY[name].filename).read_bytes()
    for name, blank in (("tinystories_train", False), ("tinystories_valid", True)):
        ds = data.REGISTRY[name]
        files[_path(ds.url)] = published_tinystories((MIRROR / ds.filename).read_bytes(), blank)
    derived = (MIRROR / data.REGISTRY["hellaswag_derived"].filename).read_bytes()
    files[_path(data.REGISTRY["hellaswag"].url)] = official_hellaswag(derived)
    for urls in data.TIKTOKEN_FILES.values():
        for url in urls:
            cached = MIRROR / "tiktoken_cache" / hashlib.sha1(url.encode()).hexdigest()
            files[_path(url)] = cached.read_bytes()
    server = Site(files)
    monkeypatch.delenv("ZTH_DATA_DIR", raising=False)
    monkeypatch.setenv("ZTH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    monkeypatch.setenv("ZTH_DATA_URL", server.base)
    for var in ("no_proxy", "NO_PROXY"):  # a proxy setting must not reroute 127.0.0.1
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    yield server
    server.close()


@needs_mirror
def test_tinystories_cut_from_the_published_files(site):
    for name in ("tinystories_train", "tinystories_valid"):
        ds = data.REGISTRY[name]
        p = data.fetch(name)
        assert p.read_bytes() == (MIRROR / ds.filename).read_bytes()
        assert (_path(ds.url), f"bytes=0-{ds.head - 1}") in site.requests  # only the head is asked for
        assert EXTRA_STORY not in p.read_text(encoding="utf-8")


@needs_mirror
def test_hellaswag_derived_is_made_from_the_official_file(site):
    p = data.fetch("hellaswag_derived")
    assert p.read_bytes() == (MIRROR / "hellaswag" / "hellaswag_val_derived.jsonl").read_bytes()
    assert data.state("hellaswag")[0] == "present"  # the official file came first, and stays


def test_strip_wikihow_tags_on_a_handmade_official_example():
    """An example written in the official format (ctx_a/ctx_b, tags, extra fields) gives the
    derived copy's row, as the mirror holds it (its line 3243)."""
    official = {
        "ind": 10417, "activity_label": "Personal Care and Style",
        "ctx_a": "[header] How to become a fashion consultant [title] Obtain your high school diploma or "
                 "ged. [step] This job requires a high school diploma or equivalent, so make sure to apply "
                 "yourself and finish school. [substeps] If your high school offers these classes, take art, "
                 "design, and sewing to familiarize yourself with foundational concepts in fashion.",
        "ctx_b": "", "split": "val", "split_type": "zeroshot", "label": 2, "source_id": "wikihow~17045",
        "endings": ["[substeps] Many high schools have classes offered. [title] Search for positions.",
                    "Having an associate's degree will help you.", "Plain ending.", "[step] Last one."],
    }
    official["ctx"] = official["ctx_a"]
    line = json.dumps(official).encode() + b"\n"
    row = json.loads(data.hellaswag_derived(io.BytesIO(line)))
    assert list(row) == ["ind", "activity_label", "ctx", "endings", "label", "split"]
    assert row["ctx"] == ("How to become a fashion consultant. Obtain your high school diploma or ged. This "
                          "job requires a high school diploma or equivalent, so make sure to apply yourself "
                          "and finish school. If your high school offers these classes, take art, design, "
                          "and sewing to familiarize yourself with foundational concepts in fashion.")
    assert row["endings"] == ["Many high schools have classes offered.. Search for positions.",
                              "Having an associate's degree will help you.", "Plain ending.", "Last one."]
    assert (row["ind"], row["label"], row["split"]) == (0, 2, "val")
    if MIRROR is not None and (MIRROR / "hellaswag").is_dir():
        mirror_row = json.loads((MIRROR / "hellaswag" / "hellaswag_val_derived.jsonl").read_text(
            encoding="utf-8").splitlines()[3243])
        assert mirror_row["ctx"] == row["ctx"] and mirror_row["activity_label"] == row["activity_label"]
    assert data.strip_wikihow_tags("Keep [insert name] and [www.x.org] links.") == \
        "Keep [insert name] and [www.x.org] links."


@needs_mirror
def test_interrupted_tinystories_download_leaves_nothing(site):
    ds = data.REGISTRY["tinystories_train"]
    site.cut = _path(ds.url)
    with pytest.raises(data.DataError, match="nothing was saved") as e:
        data.fetch("tinystories_train")
    assert "\n" not in str(e.value)
    assert not [p for p in data.cache_dir().rglob("*") if p.is_file()]


@needs_mirror
def test_wrong_published_bytes_fail_the_checksum_and_leave_nothing(site):
    ds = data.REGISTRY["tinystories_valid"]
    site.files[_path(ds.url)] = site.files[_path(ds.url)].replace(b"Spot", b"Spit", 1)
    with pytest.raises(data.DataError, match="does not match.*nothing was saved"):
        data.fetch("tinystories_valid")
    site.files[_path(data.REGISTRY["names"].url)] += b"x"
    with pytest.raises(data.DataError, match="sha256"):
        data.fetch("names")
    assert not [p for p in data.cache_dir().rglob("*") if p.is_file()]


@needs_mirror
def test_fetch_all_from_the_local_site_fetches_and_verifies_every_file(site, capsys):
    from zth.cli import main
    assert main(["data", "fetch", "--all"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok ") == len(data.REGISTRY) + len(data.TIKTOKEN_FILES)
    for name in data.REGISTRY:
        state, p, _ = data.state(name)
        assert state == "present" and data.cache_dir() in p.parents, name
    for enc in data.TIKTOKEN_FILES:
        assert data.tiktoken_state(enc)[0] == "present"
    assert data.tiktoken_encoding("gpt2").encode("hello world") == [31373, 995]


def test_fetch_all_offline_says_where_each_file_goes(tmp_path, monkeypatch, capsys):
    from zth.cli import main
    monkeypatch.delenv("ZTH_DATA_DIR", raising=False)
    monkeypatch.setenv("ZTH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    monkeypatch.setenv("ZTH_DATA_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    assert main(["data", "fetch", "--all"]) == 2
    err = capsys.readouterr().err.splitlines()
    for name, ds in data.REGISTRY.items():
        line = next(ln for ln in err if ln.startswith(f"FAILED  {name}:"))
        assert str(tmp_path / "cache" / ds.filename) in line, line
    for enc in data.TIKTOKEN_FILES:
        line = next(ln for ln in err if ln.startswith(f"FAILED  tiktoken:{enc}:"))
        assert "TIKTOKEN_CACHE_DIR" in line and str(tmp_path / "tiktoken") in line
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_missing_tiktoken_encoding_is_one_line_naming_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tk"))
    monkeypatch.setenv("ZTH_DATA_URL", "http://127.0.0.1:9")
    with pytest.raises(data.DataError) as e:
        data.tiktoken_encoding("cl100k_base")
    msg = str(e.value)
    assert "\n" not in msg and "TIKTOKEN_CACHE_DIR" in msg and "zth data fetch" in msg
    assert "Max retries" not in msg


def test_corrupt_and_misconfigured_are_reported(tmp_path, monkeypatch, capsys):
    from zth.cli import main
    from zth.doctor import report
    cache = tmp_path / "cache"
    (cache).mkdir()
    (cache / "names.txt").write_text("not the names\n")
    monkeypatch.setenv("ZTH_CACHE_DIR", str(cache))
    monkeypatch.setenv("ZTH_DATA_DIR", str(tmp_path / "no-such-folder"))
    tk = tmp_path / "tk"
    tk.write_text("a file, not a folder")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tk))
    assert main(["data", "list"]) == 0
    out, err = capsys.readouterr()
    expected = f"corrupt (sha mismatch): delete {cache / 'names.txt'}"
    assert expected in out
    assert f"ZTH_DATA_DIR={tmp_path / 'no-such-folder'} names no folder" in err
    text, _ = report()
    assert expected in text and "names no folder" in text
    assert f"{tk} is a file" in text and "tiktoken looks for" in text and "TIKTOKEN_CACHE_DIR" in text
    with pytest.raises(data.DataError) as e:
        data.path("names")
    assert "delete" in str(e.value)
    monkeypatch.setenv("ZTH_CACHE_DIR", str(tk / "sub"))  # the cache path runs into a file
    monkeypatch.setenv("ZTH_DATA_URL", "http://127.0.0.1:9")
    with pytest.raises(data.DataError) as e:
        data.path("taylorswift")
    assert "cannot be created" in str(e.value) and "offline" not in str(e.value)
