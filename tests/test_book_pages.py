"""How the book reads: one honest home, the lecture boxes, no quoted numbers, toggled solutions.

The first tests need no build; those on the built pages read ``_build/html`` (skipped if absent).
"""

from __future__ import annotations

import json
import re
import sys

import pytest
import yaml
from book_toc import ROOT, chapters

sys.path.insert(0, str(ROOT / "book" / "_ext"))
pytest.importorskip("sphinx", reason="the book extension needs the book extras (pip install -e .[book])")
import zth_pages  # noqa: E402

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
HOME = zth_pages.repository_home((CONFIG.get("repository") or {}).get("url"))
LECTURES = zth_pages.load_lectures(ROOT / "book" / "lectures.yml")
HTML = ROOT / "_build" / "html"
PLACEHOLDER = re.compile(
    r"github\.com/(?:" + "|".join(re.escape(p) for p in zth_pages.PLACEHOLDERS) + ")", re.I
)


@pytest.mark.parametrize("url, home", [
    ("", None), (None, None), ("https://github.com/zth-course/zth", None),
    ("https://github.com/your-org/zth/", None), ("https://gitlab.com/a/b", None),
    ("https://github.com/karpathy/nn-zero-to-hero/", "https://github.com/karpathy/nn-zero-to-hero"),
])
def test_repository_home_is_a_real_github_repository_or_nothing(url, home):
    assert zth_pages.repository_home(url) == home


def test_configured_home_is_real_or_unset():
    url = (CONFIG.get("repository") or {}).get("url") or ""
    assert url == "" or HOME == url.rstrip("/"), f"_config.yml repository.url {url!r} is a placeholder"
    assert "use_repository_button" not in (CONFIG.get("html") or {}), "the buttons follow repository.url"
    assert "colab_url" not in (CONFIG.get("launch_buttons") or {}), "the Colab button follows repository.url"


def test_no_placeholder_repository_in_the_sources():
    files = [ROOT / "README.md", ROOT / "_config.yml", *sorted((ROOT / "book").rglob("*.md")),
             *sorted((ROOT / "book").rglob("*.py")), *sorted((ROOT / "zth").rglob("*.py"))]
    found = [f.relative_to(ROOT).as_posix() for f in files
             if PLACEHOLDER.search(f.read_text(encoding="utf-8"))]
    assert not found, f"placeholder repository in {found}"


@pytest.mark.parametrize("src, shown", [
    ("x = 1\nglue('a', x, display=False)\ny = 2", "x = 1\ny = 2"),
    ("glue('a', f(1,\n          2), display=False)\nprint(3)", "print(3)"),
    ("glue('a', 1)\nglue('b', 2)\n", ""),
    ("text = 'glue(' + s", "text = 'glue(' + s"),
    ("n = 2\nfor k in ks:\n    glue(k, 1, display=False)\nprint(n)", "n = 2\nprint(n)"),
    ("for k in ks:\n    print(k)\n    glue(k, 1)", "for k in ks:\n    print(k)"),
])
def test_glue_statements_are_dropped_from_the_shown_code(src, shown):
    assert zth_pages.strip_glue(src) == shown


def test_every_lecture_chapter_has_its_lecture_facts():
    for doc in chapters():
        facts = LECTURES.get(doc)
        assert facts is not None, f"book/lectures.yml has no entry for {doc}"
        assert facts.get("code"), f"{doc}: no code repository"
        # a lecture's code is Karpathy's; an extra chapter cites its sources
        for name, url in facts["code"].items():
            owner = "https://github.com/karpathy/" if facts.get("lecture") else "https://github.com/"
            assert url.startswith(owner), f"{doc}: {name} -> {url}"
        if facts.get("lecture"):
            assert re.fullmatch(r"https://www\.youtube\.com/watch\?v=[\w-]{11}", facts["video"]), doc
        for t in facts.get("sections") or {}:
            assert re.fullmatch(r"\d\d:\d\d:\d\d", t), f"{doc}: timestamp {t!r}"
        order = chapters()
        for dep in facts.get("builds_on") or []:
            assert dep in order and order.index(dep) < order.index(doc), f"{doc} builds on {dep}"


# -- the built pages ---------------------------------------------------------------------------

def _page(doc: str) -> str:
    path = HTML / f"{doc}.html"
    if not path.is_file():
        pytest.skip(f"{path} not built (run jupyter-book build . first)")
    return path.read_text(encoding="utf-8")


QUOTED = re.compile(r"""^\s*(['"]).*\1\s*$""", re.S)


@pytest.mark.parametrize("doc", chapters())
def test_no_glued_value_is_rendered_in_quotes(doc):
    """`{glue}` shows a string's repr ('420,929'); prose uses {glue:text} or a number with a format."""
    html = _page(doc)
    pasted = re.findall(r'<span class="[^"]*pasted-(?:text|inline)[^"]*">(.*?)</span>', html, re.S)
    pasted = [re.sub(r"<[^>]+>", "", p) for p in pasted]
    quoted = [p for p in pasted if QUOTED.match(p)]
    assert not quoted, f"{doc}: glued values in quotes: {quoted[:5]}"


@pytest.mark.parametrize("doc", chapters())
def test_no_link_to_a_placeholder_or_unset_home(doc):
    html = _page(doc)
    links = re.findall(r'href="([^"]+)"', html)
    bad = [h for h in links if PLACEHOLDER.search(h)]
    assert not bad, f"{doc}: placeholder links {bad}"
    if HOME is None:
        assert not [h for h in links if "colab.research.google.com/github" in h], f"{doc}: Colab link"
    nb = HTML / "_sources" / f"{doc}.ipynb"
    if nb.is_file():
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        setup = "".join(cells[0]["source"]) if cells and cells[0]["metadata"].get("zth") == "setup" else ""
        assert not PLACEHOLDER.search(setup)
        why = "missing" if HOME else "without a home"
        assert bool(setup) == (HOME is not None), f"{doc}: install cell {why}"
        if HOME:
            assert f"git+{HOME}" in setup


@pytest.mark.parametrize("doc", chapters())
def test_chapter_opens_with_its_lecture_box(doc):
    html = _page(doc)
    box = re.search(r'<div class="[^"]*zth-lecture[^"]*">(.*?)</div>', html, re.S)
    assert box, f"{doc}: no lecture box"
    text = box.group(1)
    facts = LECTURES[doc]
    if facts.get("video"):
        assert facts["video"] in text
    assert "Run time" in text and re.search(r"\d+ s", text), f"{doc}: no run time in the box"
    assert "Run it yourself" in text


@pytest.mark.parametrize("doc", chapters())
def test_exercise_solutions_are_closed_toggles(doc):
    html = _page(doc)
    exercises = html.split('id="exercises"', 1)
    assert len(exercises) == 2, f"{doc}: no Exercises section"
    part = exercises[1]
    questions = len(re.findall(r"<p><strong>(?:Exercise|EX?\d|Step \d)", part))
    toggles = re.findall(r'<details class="admonition hide[^"]*zth-solution[^"]*"[^>]*>', part)
    assert questions and len(toggles) >= questions, (
        f"{doc}: {questions} exercises, {len(toggles)} toggled solutions"
    )
    assert not [t for t in toggles if " open" in t], f"{doc}: a solution is open by default"
