"""Sphinx glue that makes the zth book strict, never stale, and launchable.

* Never stale: the execution cache is keyed on the notebook text *and* on a hash of the
  ``zth`` package's source. The cache lives in ``_build/.jupyter_cache/<hash>``; a change to
  ``zth/`` changes the folder (a config value Sphinx tracks), so every chapter re-executes,
  while an unchanged rebuild reuses the cache. Folders of old hashes are removed.
* Launchable: the theme's Colab button points at the ``.md`` source, which Colab cannot open.
  We point it at the executed ``.ipynb`` that the theme publishes under ``_sources/`` (on the
  branch the site is served from), and put an install cell at the top of that notebook so it
  runs in Colab as downloaded. Both exist only when ``repository.url`` names the project's real
  home (``zth_pages.repository_home``); unset, the notebook runs where zth is installed.
* How a chapter reads (lecture box, glue out of sight, exercise solutions in toggles): see
  ``zth_pages``.
* Scoreboard: ``book/scoreboard`` is read after every chapter and on every build, and each
  chapter's execution time is written beside its glue outputs (``<docname>.exec.json``), so
  the scoreboard notebook (``zth.scoreboard``) sees the whole build.
* Figures on the page: the chapters' kernels inherit this process's environment, and an
  ``MPLBACKEND`` such as ``Agg`` (common on headless machines) would override ipykernel's
  inline backend and silently drop every plot, so the build removes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import zth_pages
from sphinx.application import Sphinx

COLAB_SETUP = (
    "# Running outside the book (Colab, a fresh Jupyter): install zth first.\n"
    "import importlib.util, sys\n"
    "if importlib.util.find_spec('zth') is None:\n"
    "    !{sys.executable} -m pip install -q 'zth @ git+{repo}'\n"
)


def source_hash(package_dir: Path) -> str:
    """sha256 over the package's Python files (names and contents), 16 hex digits."""
    h = hashlib.sha256()
    for f in sorted(package_dir.rglob("*.py")):
        h.update(f.relative_to(package_dir).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _key_cache_on_source(app: Sphinx, config) -> None:
    package = Path(app.confdir) / "zth"
    base = Path(config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache")
    base = base.resolve()
    current = base / source_hash(package)
    if base.is_dir():
        for old in base.iterdir():
            if old.is_dir() and old != current and len(old.name) == 16:
                shutil.rmtree(old, ignore_errors=True)
    config.nb_execution_cache_path = str(current)


def _inline_figures(app: Sphinx, config) -> None:
    """Let the chapters' kernels pick ipykernel's inline backend, whatever the shell set."""
    if os.environ.get("MPLBACKEND", "").rpartition(".")[2] != "backend_inline":
        os.environ.pop("MPLBACKEND", None)


def _walk_buttons(buttons):
    for b in buttons:
        yield b
        yield from _walk_buttons(b.get("buttons", []))


def _launchable_notebook(app: Sphinx, pagename: str, templatename, context, doctree) -> None:
    if "ipynb_source" not in context:  # not a notebook page
        return
    repo = app.config.zth_repository
    if not repo:  # no published home: no install cell, no Colab button (the theme adds none)
        return
    ipynb = Path(app.outdir) / "_sources" / context["ipynb_source"]
    if ipynb.is_file():
        nb = json.loads(ipynb.read_text(encoding="utf-8"))
        if not nb["cells"] or nb["cells"][0].get("metadata", {}).get("zth") != "setup":
            source = COLAB_SETUP.replace("{repo}", repo)
            nb["cells"].insert(0, {"cell_type": "code", "execution_count": None, "id": "zth-setup",
                                   "metadata": {"zth": "setup"}, "outputs": [], "source": source})
            ipynb.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    org_repo = repo.removeprefix("https://github.com/")
    branch = app.config.zth_pages_branch
    for b in _walk_buttons(context.get("header_buttons", [])):
        if "colab.research.google.com" in b.get("url", ""):
            b["url"] = (f"https://colab.research.google.com/github/{org_repo}/blob/{branch}/"
                        f"_sources/{context['ipynb_source']}")


def _clean_page(app: Sphinx, pagename: str, templatename, context, doctree) -> None:
    """Keep the browser console clean: no script twice, and a valid initial colour mode.

    sphinx-thebe registers its inline configuration script during the read phase, which
    Sphinx 7 then emits twice (``const THEBE_JS_URL`` declared twice is a page error); the
    theme logs an error on a first visit unless ``default_mode`` is set.
    """
    seen, unique = set(), []
    for js in context.get("script_files", []):
        # an inline script is registered once with filename None and once with "": the same script
        key = (getattr(js, "filename", str(js)) or "", tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    if "script_files" in context:
        context["script_files"][:] = unique
    context.setdefault("default_mode", "auto")


def _scoreboard_last(app: Sphinx, env, docnames: list[str]) -> None:
    """Read the scoreboard after every chapter, and tell its kernel where the build is."""
    os.environ["ZTH_BOOK_OUTPUT"] = str(env.mystnb_config.output_folder)
    os.environ["ZTH_RESULTS_DIR"] = str(Path(app.confdir) / "results")
    doc = app.config.zth_scoreboard_doc
    if doc in docnames:
        docnames.remove(doc)
        docnames.append(doc)


def _scoreboard_always(app: Sphinx, env, added, changed, removed) -> list[str]:
    """The scoreboard reflects the whole build, so it is re-read (and re-executed) every time."""
    doc = app.config.zth_scoreboard_doc
    return [doc] if doc in env.found_docs else []


def _record_exec_time(app: Sphinx, doctree) -> None:
    """Write ``<docname>.exec.json`` (execution seconds) beside myst-nb's ``.glue.json``."""
    from myst_nb.sphinx_ import NbMetadataCollector

    env = app.env
    data = NbMetadataCollector.get_exec_data(env, env.docname)
    if not data:
        return
    path = Path(env.mystnb_config.output_folder).joinpath(*(env.docname + ".exec.json").split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {k: data.get(k) for k in ("runtime", "method", "succeeded", "mtime")}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, path)


def setup(app: Sphinx) -> dict:
    zth_pages.setup(app)
    app.add_config_value("zth_pages_branch", "gh-pages", "html")
    app.add_config_value("zth_scoreboard_doc", "book/scoreboard", "env")
    app.connect("config-inited", _key_cache_on_source, priority=100)
    app.connect("config-inited", _inline_figures)
    app.connect("html-page-context", _launchable_notebook, priority=502)  # after the theme's 501
    app.connect("html-page-context", _clean_page)
    app.connect("env-get-outdated", _scoreboard_always)
    app.connect("env-before-read-docs", _scoreboard_last)
    app.connect("doctree-read", _record_exec_time)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
