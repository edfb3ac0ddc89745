"""The scoreboard: parsing glued outputs, marks, recorded runs, and the registry against the chapters."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zth.runs import read_runs
from zth.scoreboard import CHAPTERS, HEADLINES, Scoreboard, Target, parse_number

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "text,value",
    [
        ("0.010978", 0.010978),
        ("2", 2.0),
        ("'100%'", 1.0),
        ("'87.5%'", 0.875),
        ("'76,579'", 76579.0),
        ("np.float64(1.9834)", 1.9834),
        ("tensor(2.1234)", 2.1234),
        ("'1,234 texts, all equal'", 1234.0),
        ("1e-05", 1e-5),
        ("-3.5", -3.5),
        ("True", 1.0),
        ("'no number'", None),
        ("[]", None),
    ],
)
def test_parse_number_reads_what_glue_shows(text, value):
    assert parse_number(text) == (pytest.approx(value) if value is not None else None)


def test_targets():
    assert Target("<=", 2.12).met(2.12) and not Target("<=", 2.12).met(2.1201)
    assert Target(">=", 100).met(100) and not Target(">=", 100).met(99.9)
    assert Target("==", 0.010978, 5e-7).met(0.0109784) and not Target("==", 0.010978, 5e-7).met(0.01098)
    assert str(Target("<=", 2.12)) == "≤ 2.12"
    assert str(Target("==", 76579)) == "= 76,579"
    with pytest.raises(ValueError, match="unknown target operator"):
        Target("<", 1).met(0)


def _nb(folder: Path, doc: str, glue: dict[str, str] | None = None, runtime: float | None = None) -> None:
    (folder / "book").mkdir(parents=True, exist_ok=True)
    (folder / "book" / f"{doc}.ipynb").write_text("{}")
    if glue is not None:
        payload = {k: {"output_type": "display_data", "data": {"text/plain": v}} for k, v in glue.items()}
        (folder / "book" / f"{doc}.glue.json").write_text(json.dumps(payload))
    if runtime is not None:
        (folder / "book" / f"{doc}.exec.json").write_text(json.dumps({"runtime": runtime}))


def _run(
    results: Path, family: str, name: str, rows: list[dict], info: dict | None = None, tail: str = ""
) -> None:
    d = results / family / name
    d.mkdir(parents=True)
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)
    if info is not None:
        (d / "run.json").write_text(json.dumps(info))


def _row(markdown: str, what: str) -> list[str]:
    line = next(ln for ln in markdown.splitlines() if f"| {what} |" in ln)
    return [c.strip() for c in line.strip("|").split("|")]


def test_board_marks_met_missed_and_missing(tmp_path):
    build = tmp_path / "build"
    _nb(build, "01_micrograd", {"micrograd_moons_loss": "0.010978", "micrograd_moons_acc": "'99%'"}, 42.0)
    _nb(build, "03_mlp", {"mlp_dev_loss": "2.1187", "mlp_train_loss": "2.058492936654584"}, 200.0)
    board = Scoreboard.from_build(build, tmp_path / "no-results")
    md = board.headlines_markdown()
    assert _row(md, "moons: final loss")[2:] == [
        "0.010978",
        "0.010978 (micrograd 0.1.0)",
        "= 0.010978 (6 decimals)",
        "✓ met",
    ]
    assert (
        _row(md, "moons: final accuracy")[2] == "99%" and _row(md, "moons: final accuracy")[5] == "✗ missed"
    )
    assert _row(md, "MLP dev loss")[2:] == ["2.1187", "2.1701", "≤ 2.12", "✓ met"]
    assert _row(md, "MLP train loss")[2] == "2.0585"  # a float glued at full precision is rounded
    assert _row(md, "MLP train loss")[5] == ""  # no target, no mark
    assert _row(md, "MLP test loss")[2] == "`mlp_test_loss` not glued"  # chapter built, key missing
    assert "bigram" not in md  # chapters not built are left out of the headline table
    assert "GPU" not in md.splitlines()[0]  # no recorded runs, no GPU columns
    chapters = board.chapters_markdown()
    assert _row(chapters, "01 micrograd")[1:] == ["42 s", "180 s", "✓ met"]
    assert _row(chapters, "03 MLP")[1:] == ["200 s", "180 s", "✗ missed"]
    assert _row(chapters, "02 bigram")[1] == "not yet built"


def test_gpu_columns_come_from_recorded_runs(tmp_path):
    build, results = tmp_path / "build", tmp_path / "results"
    _nb(build, "07_gpt", {"gpt_val_loss": "1.6612", "gpt_params": "1234567"}, 250.0)
    _run(
        results,
        "gpt",
        "h100-shakespeare",
        [
            {"step": 0, "train_loss": 4.2},
            {"step": 500, "val_loss": 1.61},
            {"step": 3000, "val_loss": 1.4712},
            {"step": 5000, "val_loss": 1.52, "elapsed": 300.0},
        ],
        {"device": "NVIDIA H100 80GB HBM3", "preset": "shakespeare", "git_rev": "0123456789abcdef"},
        tail='{"step": 5001, "val_lo',
    )  # a line cut off mid-write is skipped
    board = Scoreboard.from_build(build, results)
    md = board.headlines_markdown()
    assert md.splitlines()[0].endswith("GPU full run | GPU target | GPU mark |")
    row = _row(md, "GPT val loss (CPU `book` preset)")
    assert row[2:6] == ["1.6612", "1.48 (full config, GPU)", "≤ 1.7", "✓ met"]
    assert row[6:] == ["1.471 (NVIDIA H100 80GB HBM3)", "≈ 1.48 or better", "✓ met"]
    assert _row(md, "GPT parameters (`book` preset)")[2] == "1,234,567"
    runs = board.runs_markdown()
    assert _row(runs, "gpt/h100-shakespeare")[1:] == [
        "NVIDIA H100 80GB HBM3",
        "shakespeare",
        "5,000",
        "1.4712",
        "5.0 min",
        "0123456789",
    ]


def test_read_runs_tolerates_missing_run_json_and_odd_lines(tmp_path):
    _run(
        tmp_path,
        "gpt2",
        "a",
        [{"step": 1, "val": 3.5}, {"step": 2, "val": float("nan")}],
        None,
        tail="[1, 2]\n",
    )
    (run,) = read_runs(tmp_path)
    assert run.family == "gpt2" and run.name == "a" and run.device == "unknown device"
    assert run.best(("val_loss", "val"), "min") == 3.5
    assert run.best(("mfu",), "max") is None
    assert run.series("val") == ([1], [3.5])  # the NaN line is left out
    assert run.last("step") == 2
    assert read_runs(tmp_path / "nothing-here") == []
    assert read_runs(tmp_path, family="gpt") == [] and len(read_runs(tmp_path, family="gpt2")) == 1


def test_registry_is_consistent():
    keys = [h.key for h in HEADLINES if h.key]
    assert len(keys) == len(set(keys)), "a glue key is registered twice"
    docs = {c.doc for c in CHAPTERS}
    assert all(h.doc in docs for h in HEADLINES)
    assert [c.doc for c in CHAPTERS] == sorted(docs)
    for h in HEADLINES:
        assert h.key or h.gpu, f"{h.what}: a row needs a glue key or a GPU metric"


CHAPTER_FILES = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))


@pytest.mark.parametrize("path", CHAPTER_FILES, ids=lambda p: p.stem)
def test_every_chapter_is_registered_and_glues_its_headline_keys(path):
    """When a chapter lands, the scoreboard must know it, and its registered keys must be glued."""
    assert path.stem in {c.doc for c in CHAPTERS}, f"add {path.stem} to zth.scoreboard.CHAPTERS"
    source = path.read_text(encoding="utf-8")
    glued = set(re.findall(r"""\bglue\(\s*["']([A-Za-z0-9_]+)["']""", source))
    expected = {h.key for h in HEADLINES if h.doc == path.stem and h.key}
    assert expected <= glued, (
        f"{path.name} does not glue {sorted(expected - glued)} (zth.scoreboard.HEADLINES)"
    )


def test_zth_scoreboard_prints_the_tables(tmp_path):
    build = tmp_path / "build"
    _nb(build, "06_wavenet", {"wavenet_val_loss": "2.001", "wavenet_params": "76579"}, 170.0)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "zth",
            "scoreboard",
            "--build",
            str(build),
            "--results",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert _row(r.stdout, "WaveNet val loss")[2:] == ["2.001", "1.993", "≤ 1.993", "✗ missed"]
    assert _row(r.stdout, "WaveNet parameters")[2:] == ["76,579", "76,579", "= 76,579", "✓ met"]
    r = subprocess.run(
        [sys.executable, "-m", "zth", "scoreboard", "--build", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0 and "no book build" in r.stderr
