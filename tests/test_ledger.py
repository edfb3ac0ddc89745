"""The reproduction ledger: its logic on controlled inputs, then every CPU row against the book's build.

The second part runs after ``jupyter-book build`` (``.ci/run`` calls it next to the browser
test); without a build it skips. ``ZTH_BOOK_OUTPUT`` points it at another build folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from zth.ledger import load_ledger
from zth.scoreboard import Scoreboard

ROOT = Path(__file__).resolve().parents[1]

LEDGER = """
[[chapter]]
doc = "03_mlp"
title = "MLP"
lecture = "L3"
budget_s = 180

[[chapter]]
doc = "07_gpt"
title = "GPT"
lecture = "L7"
budget_s = 300

[[row]]
chapter = "03_mlp"
quantity = "dev loss"
lecture = "2.1701"
glue = "dev"
target = { op = "<=", value = 2.10 }

[[row]]
chapter = "03_mlp"
quantity = "test loss"
glue = "test"
no_target = "evaluated once"

[[row]]
chapter = "03_mlp"
quantity = "no worse than the reference"
glue = "dev"
target = { op = "<=", glue = "reference" }

[[row]]
chapter = "07_gpt"
quantity = "val loss"
glue = "val"
target = { op = "<=", value = 1.65 }
gpu = { family = "gpt", metric = "val_loss", best = "min", preset = "shakespeare", \
        target = { op = "<=", value = 1.485 } }
"""


def _ledger(tmp_path: Path, text: str = LEDGER):
    path = tmp_path / "ledger.toml"
    path.write_text(text, encoding="utf-8")
    return load_ledger(path)


def _build(tmp_path: Path, docs: dict[str, dict[str, str]]) -> Path:
    out = tmp_path / "build" / "book"
    out.mkdir(parents=True)
    for doc, glue in docs.items():
        (out / f"{doc}.ipynb").write_text("{}")
        payload = {k: {"output_type": "display_data", "data": {"text/plain": v}} for k, v in glue.items()}
        (out / f"{doc}.glue.json").write_text(json.dumps(payload))
    return out.parent


def _board(tmp_path, docs, runs=None):
    results = tmp_path / "results"
    for (family, name), (info, rows) in (runs or {}).items():
        d = results / family / name
        d.mkdir(parents=True)
        (d / "run.json").write_text(json.dumps(info))
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return Scoreboard.from_build(_build(tmp_path, docs), results, _ledger(tmp_path))


def test_met_and_missed_rows(tmp_path):
    board = _board(tmp_path, {"03_mlp": {"dev": "2.0985", "test": "2.1", "reference": "2.0993"}})
    dev, test, vs_ref, gpu = board.ledger.rows
    assert board.mark(dev).status == "met" and board.mark(dev).shown == "2.0985"
    assert board.mark(test).status == "no target" and board.mark(test).reason == "evaluated once"
    assert board.mark(vs_ref).status == "met" and "2.0993" in board.mark(vs_ref).shown
    assert board.mark(gpu).status == "not yet built"  # 07 is not part of this build
    assert board.failures() == []
    board = _board(tmp_path / "b", {"03_mlp": {"dev": "2.1083", "test": "2.1", "reference": "2.1001"}})
    assert board.mark(board.ledger.rows[0]).status == "missed"
    assert board.failures() == [
        "03_mlp · dev loss (glue dev): missed, 2.1083 against ≤ 2.1",
        "03_mlp · no worse than the reference (glue dev): missed, 2.1083 (vs 2.1001) against ≤ `reference`",
    ]
    assert "✗ missed" in board.ledger_markdown()


def test_a_missing_glue_fails_naming_the_row(tmp_path):
    board = _board(tmp_path, {"03_mlp": {"test": "2.1"}, "07_gpt": {"val": "'no number here'"}})
    failures = board.failures()
    assert failures[0].startswith("03_mlp · dev loss (glue dev): not glued")
    assert failures[1].startswith("03_mlp · no worse than the reference (glue dev): not glued")
    assert failures[2].startswith("07_gpt · val loss (glue val): not glued")
    assert len(failures) == 3


def test_gpu_row_without_a_run_is_not_yet_run_and_no_failure(tmp_path):
    board = _board(tmp_path, {"07_gpt": {"val": "1.64"}})
    gpu_row = board.ledger.rows[3]
    assert board.gpu_mark(gpu_row).status == "not yet run"
    assert board.mark(gpu_row).status == "met"
    assert not any("val loss" in f for f in board.failures())
    assert "not yet run" in board.gpu_markdown() and "1 not yet run" in board.summary()


def test_gpu_row_reads_the_best_run_of_its_preset(tmp_path):
    info = {"device": "NVIDIA H100", "preset": "shakespeare", "git_revision": "0123456789abcdef",
            "wall_s": 600}
    evals = [{"kind": "eval", "step": s, "val_loss": v} for s, v in [(500, 1.9), (4000, 1.47), (5000, 1.49)]]
    runs = {("gpt", "h100"): (info, evals),
            ("gpt", "other"): ({**info, "preset": "book"}, [{"kind": "eval", "step": 1, "val_loss": 1.2}])}
    board = _board(tmp_path, {"07_gpt": {"val": "1.64"}}, runs)
    mark = board.gpu_mark(board.ledger.rows[3])
    assert mark.status == "met" and mark.shown.startswith("1.47 (gpt/h100")  # the `book` run does not count
    runs_table = board.runs_markdown()
    assert "gpt/h100 | NVIDIA H100 | shakespeare | 5,000 | 1.4700 | 10.0\u00a0min | 0123456789" in runs_table


def test_the_summary_counts_every_mark(tmp_path):
    docs = {"03_mlp": {"dev": "2.2", "test": "2.1", "reference": "2.3"}, "07_gpt": {"val": "1.6"}}
    board = _board(tmp_path, docs)
    assert board.summary() == ("**2 met** · **1 missed** · 1 not yet run (GPU) · 1 shown without a target")


@pytest.mark.parametrize(
    "row,error",
    [
        ('chapter = "03_mlp"\nquantity = "q"\nglue = "x"', "give a target or the reason"),
        ('chapter = "03_mlp"\nquantity = "q"', "needs a glue name or a GPU metric"),
        ('chapter = "99_nope"\nquantity = "q"\nglue = "x"\nno_target = "r"', "unknown chapter"),
        ('chapter = "03_mlp"\nquantity = "q"\nglue = "x"\ntarget = { op = "<", value = 1, glue = "y" }',
         "exactly one of value and glue"),
        ('chapter = "03_mlp"\nquantity = "q"\nglue = "x"\ntarget = { op = "~", value = 1 }',
         "unknown target operator"),
    ],
)
def test_an_inconsistent_ledger_is_refused(tmp_path, row, error):
    with pytest.raises(ValueError, match=error):
        _ledger(tmp_path, LEDGER + "\n[[row]]\n" + row + "\n")


def test_the_shipped_ledger_loads_from_the_package():
    ledger = load_ledger()
    assert {c.doc for c in ledger.chapters} == {p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.md")}
    assert all(r.lecture for r in ledger.rows)


# --- after the book build --------------------------------------------------------------------

BUILD = Path(os.environ.get("ZTH_BOOK_OUTPUT") or ROOT / "_build" / "jupyter_execute")
CPU_ROWS = [r for r in load_ledger().rows if r.glue]


@pytest.fixture(scope="module")
def built_board() -> Scoreboard:
    if not any(BUILD.glob("**/*.ipynb")):
        pytest.skip(f"no book build in {BUILD} (run jupyter-book build . first)")
    return Scoreboard.from_build(BUILD, ROOT / "results")


@pytest.mark.parametrize("row", CPU_ROWS, ids=lambda r: f"{r.chapter}:{r.glue}:{r.quantity[:30]}")
def test_built_book_meets_its_ledger_row(built_board, row):
    """Every CPU row of the ledger is glued by its chapter and meets its target."""
    if row.chapter not in built_board.built:
        pytest.skip(f"{row.chapter} is not part of this build")
    mark = built_board.mark(row)
    assert not mark.failed, f"{row.name}: {mark.status}, {mark.shown or 'no value'} against {row.target}"
