"""How a chapter reads: its home, its lecture, its exercises (part of the ``zth_book`` extension).

* One home: ``repository.url`` in ``_config.yml``. When it names a GitHub repository, the
  repository, issues and Colab buttons and the notebooks' install cell are derived from it;
  when it is empty (or a placeholder), all four are left out: nothing links a place that does
  not exist.
* The lecture box: every chapter listed in ``book/lectures.yml`` opens, after its first
  paragraph, with the lecture's video (and the sections it follows), its code, the chapters it
  builds on, how long its cells ran in this build and how to run it yourself.
* Glue out of sight: ``glue(...)`` statements are dropped from the code shown on the page (the
  downloaded notebook keeps them); a cell that only glues shows no code.
* Exercises stay exercises: under ``## Exercises``, each exercise's question is shown and its
  solution (from its first code cell up to the next exercise: ``**Exercise N``, ``**E01``,
  ``**EX1``, ``**Step 1``) sits in a closed toggle.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml
from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx

PLACEHOLDERS = ("zth-course/", "your-org/", "owner/repo", "example/", "user/repo")
COLAB = "https://colab.research.google.com"
EXERCISE = re.compile(r"(Exercise\b|EX?\d+\b|Step \d+\b)")  # how the chapters start an exercise
GITHUB = re.compile(r"https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/?")


def repository_home(url: str | None) -> str | None:
    """The repository URL when it is a real GitHub address, else None (unset or placeholder)."""
    url = (url or "").strip().rstrip("/")
    if not GITHUB.fullmatch(url) or any(p in url.lower() + "/" for p in PLACEHOLDERS):
        return None
    return url


def _derive_from_repository(app: Sphinx, config) -> None:
    """Turn the repository, issues and Colab buttons on only for a real home."""
    opts = config.html_theme_options
    home = repository_home(opts.get("repository_url"))
    launch = dict(opts.get("launch_buttons") or {})
    if home:
        opts["repository_url"] = home
        opts.update(use_repository_button=True, use_issues_button=True)
        launch.setdefault("colab_url", COLAB)
    else:
        opts.pop("repository_url", None)
        opts.update(use_repository_button=False, use_issues_button=False, use_edit_page_button=False)
        launch.pop("colab_url", None)
    opts["launch_buttons"] = launch
    config.zth_repository = home or ""


def _notebook_download(app: Sphinx, pagename: str, templatename, context, doctree) -> None:
    """Publish the executed ``.ipynb`` under ``_sources/`` for the download button.

    The theme copies it only when a launch button is configured; without a home there is none,
    and the notebook must still be downloadable. Runs just before the theme's buttons (501).
    """
    if app.config.zth_repository or "ipynb_source" in context:
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():  # not a notebook page
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


# -- the lecture box ------------------------------------------------------------------------

def load_lectures(path: Path) -> dict[str, dict]:
    """``book/lectures.yml``: docname -> lecture facts."""
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _seconds(t: str) -> int:
    h, m, s = (int(x) for x in t.split(":"))
    return 3600 * h + 60 * m + s


def _para(*parts) -> nodes.paragraph:
    p = nodes.paragraph()
    for part in parts:
        p += part if isinstance(part, nodes.Node) else nodes.Text(part)
    return p


def _link(text: str, url: str) -> nodes.reference:
    return nodes.reference(text, text, refuri=url)


def _runtime_text(runtime: float | None, method: str | None) -> str:
    if runtime is None:
        return "not executed in this build"
    minutes, seconds = divmod(round(runtime), 60)
    took = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
    return f"{took} to execute the cells whose outputs are on this page"


def lecture_box(docname: str, facts: dict, found_docs: set[str], runtime: float | None,
                method: str | None) -> nodes.Element:
    """The admonition that opens a chapter."""
    box = nodes.admonition(classes=["zth-lecture", "tip"])
    box += nodes.title("", "The lecture, and how to run this chapter")
    items = nodes.bullet_list()

    def item(*parts):
        items.append(nodes.list_item("", _para(*parts)))

    video = facts.get("video")
    if facts.get("lecture") and video:
        item("Video: ", _link(facts["lecture"], video))
        sections = facts.get("sections") or {}
        if sections:
            marks = []
            for t, what in sections.items():
                marks += [_link(t.removeprefix("00:"), f"{video}&t={_seconds(t)}s"), nodes.Text(f" {what}; ")]
            marks[-1] = nodes.Text(marks[-1].astext().removesuffix("; "))
            item("Sections followed here: ", *marks)
    else:
        item("No video: this chapter follows the code below.")
    code = facts.get("code") or {}
    if code:
        parts: list = ["Code: "]
        for i, (name, url) in enumerate(code.items()):
            parts += [", " if i else "", _link(name, url)]
        item(*parts)
    deps = facts.get("builds_on") or []
    if deps:
        parts = ["Builds on: "]
        for i, dep in enumerate(deps):
            if dep in found_docs:  # the chapter's title, linked (a partial build may lack it)
                ref = addnodes.pending_xref("", nodes.inline("", dep), refdomain="std", reftype="doc",
                                            reftarget="/" + dep, refexplicit=False, refdoc=docname)
            else:
                ref = nodes.Text(dep)
            parts += [", " if i else "", ref]
        item(*parts)
    else:
        item("Builds on: nothing but Python and high-school calculus.")
    item("Run time: ", _runtime_text(runtime, method),
         " (on the machine that built this site, often a shared one: an upper bound).")
    item("Run it yourself (zth installed as the README says): ",
         nodes.literal("", f"jupytext --to ipynb {docname}.md && jupyter execute {docname}.ipynb"),
         " from a clone, or run the notebook from the download button above.")
    box += items
    return box


def _insert_lecture_box(app: Sphinx, doctree) -> None:
    env = app.env
    lectures = load_lectures(Path(app.confdir) / app.config.zth_lectures_file)
    facts = lectures.get(env.docname)
    if facts is None:
        return
    from myst_nb.sphinx_ import NbMetadataCollector

    data = NbMetadataCollector.get_exec_data(env, env.docname) or {}
    box = lecture_box(env.docname, facts, env.found_docs, data.get("runtime"), data.get("method"))
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    first = next((c for c in section.children if isinstance(c, nodes.paragraph)), None)
    at = section.index(first) + 1 if first is not None else 1
    section.insert(at, box)


# -- glue calls out of sight ----------------------------------------------------------------

def strip_glue(source: str) -> str:
    """``source`` without its top-level ``glue(...)`` statements (which may span lines)."""
    out, depth, skipping = [], 0, False
    for line in source.splitlines():
        if not skipping and re.match(r"\s*glue\(", line):
            skipping, depth = True, 0
        if skipping:
            depth += line.count("(") - line.count(")")
            if depth <= 0:
                skipping = False
            continue
        out.append(line)
    return "\n".join(_drop_empty_blocks(out)).rstrip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _drop_empty_blocks(lines: list[str]) -> list[str]:
    """Remove block headers (``for ...:``) left without a body once their glue calls are gone."""
    changed = True
    while changed:
        changed = False
        for i, line in enumerate(lines):
            if line.rstrip().endswith(":") and not line.lstrip().startswith("#"):
                body = next((b for b in lines[i + 1:] if b.strip()), None)
                if body is None or _indent(body) <= _indent(line):
                    del lines[i]
                    changed = True
                    break
    return lines


def _hide_glue(app: Sphinx, doctree) -> None:
    for cell in list(doctree.findall(nodes.container)):
        if cell.get("nb_element") != "cell_code_source":
            continue
        for block in cell.findall(nodes.literal_block):
            text = block.astext()
            if "glue(" not in text:
                continue
            kept = strip_glue(text)
            if kept.strip():
                block.children = [nodes.Text(kept)]
                block.rawsource = kept
            else:
                cell.parent.remove(cell)
            break


# -- exercises: questions shown, solutions toggled --------------------------------------------

def _is_exercise_start(node) -> bool:
    if not isinstance(node, nodes.paragraph):
        return False
    first = next((c for c in node.children if c.astext().strip()), None)  # MyST may lead with ""
    return isinstance(first, nodes.strong) and EXERCISE.match(first.astext()) is not None


def _is_code_cell(node) -> bool:
    return isinstance(node, nodes.container) and node.get("nb_element") == "cell_code"


def _toggle_solutions(app: Sphinx, doctree) -> None:
    from myst_nb.sphinx_ import HideCodeCellNode

    for section in doctree.findall(nodes.section):
        title = section.next_node(nodes.title)
        if title is None or title.astext().strip() != "Exercises":
            continue
        children, grouped, current = list(section.children), [], None
        for child in children:
            if _is_exercise_start(child):
                current = None
                grouped.append(child)
            elif current is None and _is_code_cell(child) and any(_is_exercise_start(g) for g in grouped):
                current = HideCodeCellNode(prompt_show="Show the solution and its check",
                                           prompt_hide="Hide the solution", classes=["zth-solution"])
                current.append(child)
                grouped.append(current)
            elif current is not None:
                current.append(child)
            else:
                grouped.append(child)
        section.children = []
        section.extend(grouped)


def setup(app: Sphinx) -> None:
    app.add_config_value("zth_lectures_file", "book/lectures.yml", "env")
    app.add_config_value("zth_repository", "", "html")
    app.connect("config-inited", _derive_from_repository, priority=400)
    app.connect("html-page-context", _notebook_download, priority=500)
    app.connect("doctree-read", _insert_lecture_box)
    app.connect("doctree-read", _hide_glue)
    app.connect("doctree-read", _toggle_solutions)
