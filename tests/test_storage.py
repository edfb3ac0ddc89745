"""The shared file helpers: atomic writes, safe checkpoints, metrics logs, device choice."""

import json
import os
import stat

import pytest
import torch

from zth import storage, sysinfo
from zth.runs import MetricsLog, read_metrics
from zth.storage import CheckpointError


def test_atomic_path_keeps_the_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with storage.atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temporary file left


def test_write_text_atomic_creates_folders_and_a_readable_file(tmp_path):
    target = storage.write_text_atomic(tmp_path / "a" / "b.txt", "héllo\n")
    assert target.read_text(encoding="utf-8") == "héllo\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    written = storage.write_json(tmp_path / "c.json", {"x": [1, 2]}).read_text()
    assert json.loads(written) == {"x": [1, 2]} and written.endswith("}\n")


def test_checkpoint_round_trip_and_format_check(tmp_path):
    path = storage.save_checkpoint(tmp_path / "c.pt", {"w": torch.arange(3.0), "step": 7}, "fmt/1")
    ckpt = storage.load_checkpoint(path, "fmt/1")
    assert ckpt["step"] == 7 and torch.equal(ckpt["w"], torch.arange(3.0))
    with pytest.raises(CheckpointError, match="is not a other/1 checkpoint"):
        storage.load_checkpoint(path, "other/1")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        storage.load_checkpoint(tmp_path / "missing.pt", "fmt/1")


class _Payload:
    def __reduce__(self):  # what a malicious checkpoint would do on an unsafe load
        return (os.mkdir, (self.marker,))


def test_loading_never_runs_code_from_the_file(tmp_path):
    evil = _Payload()
    evil.marker = str(tmp_path / "ran")
    torch.save({"format": "fmt/1", "x": evil}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        storage.load_checkpoint(tmp_path / "evil.pt", "fmt/1")
    assert not (tmp_path / "ran").exists()
    (tmp_path / "torn.pt").write_bytes((tmp_path / "evil.pt").read_bytes()[:50])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        storage.load_checkpoint(tmp_path / "torn.pt", "fmt/1")


def test_metrics_log_resumes_at_a_step_and_skips_a_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for step in range(5):
        log.write({"step": step, "loss": 1.0 / (step + 1)})
    with open(path, "a") as f:
        f.write('{"step": 5, "lo')  # a run killed mid-line
    assert [r["step"] for r in read_metrics(path)] == [0, 1, 2, 3, 4]
    MetricsLog(path, keep_until_step=2).write({"step": 3, "loss": 0.0})
    assert [(r["step"], r["loss"]) for r in read_metrics(path)][2:] == [(2, 1 / 3), (3, 0.0)]
    MetricsLog(path)  # a fresh run starts empty
    assert read_metrics(path) == [] and read_metrics(tmp_path / "none.jsonl") == []


def test_pick_device_checks_what_it_is_asked_for(monkeypatch):
    assert sysinfo.pick_device("cpu") == torch.device("cpu")
    assert sysinfo.pick_device().type in ("cuda", "mps", "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        sysinfo.pick_device("tpu9")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        sysinfo.pick_device("cuda")
    assert sysinfo.device_name("cpu").startswith("CPU (")


def test_git_revision_prefers_the_recorded_one(monkeypatch):
    monkeypatch.setenv("ZTH_GIT_REV", "abc123")
    assert sysinfo.git_revision() == "abc123"
