"""zth.data: lookup order, checksum verification, atomic downloads, clear offline errors."""

import hashlib
import http.server
import threading
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
