"""Every chapter is held to the book's shape: what it builds first, Summary and Exercises last."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from book_toc import ROOT, chapters, pages

CHAPTER_FILES = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))
HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def _body(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_there_are_chapters_and_all_are_in_the_toc_in_order():
    assert CHAPTER_FILES, "no book/NN_*.md chapter found"
    listed = chapters()
    assert listed == [f"book/{p.stem}" for p in CHAPTER_FILES], (
        "_toc.yml 'Lectures' must list every chapter in order"
    )
    assert pages()[-1] == "book/scoreboard", "the scoreboard is the last page"


@pytest.mark.parametrize("path", CHAPTER_FILES, ids=lambda p: p.stem)
def test_chapter_shape(path):
    text = _body(path)
    assert text.startswith(HEADER), f"{path.name}: the jupytext header must be exactly chapter 1's"
    body = text[len(HEADER) :]
    # code cells may contain lines starting with '#': look at the markdown only
    markdown = re.sub(r"^```\{code-cell\}.*?^```$", "", body, flags=re.S | re.M)
    title = re.search(r"^# (.+)$", markdown, re.M)
    assert title, f"{path.name}: no '# ' title"
    opening = markdown[title.end() :].strip().split("\n\n", 1)[0]
    assert re.match(r"\*\*What (we|this chapter) builds?\b", opening), (
        f"{path.name}: the first paragraph must start with '**What we build.**' "
        "and say what the chapter builds"
    )
    h2 = re.findall(r"^## (.+?)\s*$", markdown, re.M)
    assert h2[-2:] == ["Summary", "Exercises"], (
        f"{path.name}: must end with '## Summary' then '## Exercises' (found {h2[-2:]})"
    )
    assert "{code-cell}" in body.split("\n## Exercises", 1)[1], (
        f"{path.name}: exercises must be solved in code"
    )


@pytest.mark.parametrize("path", CHAPTER_FILES, ids=lambda p: p.stem)
def test_chapter_figures_are_light_and_opaque(path):
    """Plots keep a white background (legible in dark mode) and a modest dpi (pages stay small)."""
    text = _body(path)
    for m in re.finditer(r"""(?:figure\.dpi["']\]\s*=|dpi\s*=)\s*(\d+)""", text):
        assert int(m.group(1)) <= 100, f"{path.name}: dpi {m.group(1)} > 100"
    for m in re.finditer(r"""facecolor["']?\]?\s*[=:]\s*["']([^"']+)["']""", text):
        assert m.group(1) in ("white", "w", "#ffffff", "#fff"), f"{path.name}: figure facecolor {m.group(1)}"


BUILT = ROOT / "_build" / "jupyter_execute" / "book"
MAX_LINES_PER_CELL = 60


def _executed(path: Path) -> dict:
    """The chapter's executed notebook from the last book build (skip the test if none)."""
    nb_path = BUILT / f"{path.stem}.ipynb"
    if not nb_path.is_file():
        pytest.skip(f"{nb_path} not built (run jupyter-book build . first)")
    return json.loads(nb_path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", CHAPTER_FILES, ids=lambda p: p.stem)
def test_executed_chapter_logs_are_short(path):
    """No progress bars or thousands of log lines in the book: each cell prints a few lines at most."""
    nb = _executed(path)
    for i, cell in enumerate(nb["cells"]):
        text = "".join(
            "".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("output_type") == "stream"
        )
        assert "\r" not in text, f"{path.name} cell {i}: carriage returns (a progress bar?) in the output"
        n = text.count("\n")
        assert n <= MAX_LINES_PER_CELL, f"{path.name} cell {i}: {n} lines of output (keep logs short)"


DRAWS = re.compile(r"\bplt\.(?:subplots|figure|imshow|plot)\(|\bplot_[a-z_]+\(")


@pytest.mark.parametrize("path", CHAPTER_FILES, ids=lambda p: p.stem)
def test_executed_chapter_figures_reach_the_page(path):
    """A cell that draws a figure shows it: an image output, not a plot lost off screen
    (as happens when MPLBACKEND=Agg overrides the kernel's inline backend). Cells tagged
    ``draws-if-recorded`` plot results that may not exist yet (GPU runs) and are exempt."""
    nb = _executed(path)
    for i, cell in enumerate(nb["cells"]):
        source = "".join(cell.get("source", ""))
        if cell.get("cell_type") != "code" or not DRAWS.search(source) or "plt.close(" in source:
            continue
        if "draws-if-recorded" in cell.get("metadata", {}).get("tags", []):
            continue
        kinds = {k for o in cell.get("outputs", []) for k in o.get("data", {})}
        assert kinds & {"image/png", "image/svg+xml"}, f"{path.name} cell {i} draws a figure but shows none"


def test_built_figures_have_opaque_backgrounds():
    """A PNG with see-through corners would show the dark theme behind its axes."""
    images = sorted((ROOT / "_build" / "html" / "_images").glob("*.png"))
    if not images:
        pytest.skip("no built figures (run jupyter-book build . first)")
    import matplotlib.image

    for png in images:
        pixels = matplotlib.image.imread(png)
        if pixels.ndim == 3 and pixels.shape[2] == 4:
            corners = pixels[[0, 0, -1, -1], [0, -1, 0, -1], 3]
            assert corners.min() == 1.0, f"{png.name}: transparent background"
