"""Sphinx glue that makes the zth book strict, never stale, and launchable.

* Never stale: the execution cache is keyed on the notebook text *and* on a hash of the
  ``zth`` package's source. The cache lives in ``_build/.jupyter_cache/<hash>``; a change to
  ``zth/`` changes the folder (a config value Sphinx tracks), so every chapter re-executes,
  while an unchanged rebuild reuses the cache. Folders of old hashes are removed.
* Launchable: the theme's Colab button points at the ``.md`` source, which Colab cannot open.
  We point it at the executed ``.ipynb`` that the theme publishes under ``_sources/`` (on the
  branch the site is served from), and put an install cell at the top of that notebook so it
  runs in Colab as downloaded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

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


def _walk_buttons(buttons):
    for b in buttons:
        yield b
        yield from _walk_buttons(b.get("buttons", []))


def _launchable_notebook(app: Sphinx, pagename: str, templatename, context, doctree) -> None:
    if "ipynb_source" not in context:  # not a notebook page
        return
    repo = app.config.html_theme_options.get("repository_url", "").rstrip("/")
    ipynb = Path(app.outdir) / "_sources" / context["ipynb_source"]
    if ipynb.is_file():
        nb = json.loads(ipynb.read_text(encoding="utf-8"))
        if not nb["cells"] or nb["cells"][0].get("metadata", {}).get("zth") != "setup":
            source = COLAB_SETUP.replace("{repo}", repo)
            nb["cells"].insert(0, {"cell_type": "code", "execution_count": None, "id": "zth-setup",
                                   "metadata": {"zth": "setup"}, "outputs": [], "source": source})
            ipynb.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    if not repo.startswith("https://github.com/"):
        return
    org_repo = repo.removeprefix("https://github.com/")
    branch = app.config.zth_pages_branch
    for b in _walk_buttons(context.get("header_buttons", [])):
        if "colab.research.google.com" in b.get("url", ""):
            b["url"] = (f"https://colab.research.google.com/github/{org_repo}/blob/{branch}/"
                        f"_sources/{context['ipynb_source']}")


def setup(app: Sphinx) -> dict:
    app.add_config_value("zth_pages_branch", "gh-pages", "html")
    app.connect("config-inited", _key_cache_on_source, priority=100)
    app.connect("html-page-context", _launchable_notebook, priority=502)  # after the theme's 501
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
