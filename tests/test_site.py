"""The built book in a real browser: Debian's headless Chromium driven by Playwright.

Serves ``_build/html`` on 127.0.0.1 and opens every page of ``_toc.yml``. Run alone with
``pytest -m browser``; needs ``apt-get install chromium`` and ``pip install playwright`` (no
browser download: Playwright drives the system binary). Screenshots and a JSON report of page
weights land in ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
import urllib.parse
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("ZTH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MAX_PAGE_BYTES = 5 * 2**20

if not (HTML / "index.html").is_file():
    pytest.skip(f"{HTML} is not built: run `jupyter-book build .` first", allow_module_level=True)
if CHROMIUM is None or not Path(CHROMIUM).is_file():
    pytest.skip(
        f"Chromium not found ({CHROMIUM or 'not on PATH'}): apt-get install -y chromium "
        "(or point ZTH_CHROMIUM at the binary)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the package only)")
from book_toc import chapters, pages  # noqa: E402

PAGES = pages()
CHAPTERS = chapters()
REPORT: dict[str, dict] = {}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(HTML)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        # launch() starts Chromium on a fresh, empty temporary --user-data-dir of its own
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()
    if REPORT:
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / "report.json").write_text(json.dumps(REPORT, indent=1))


class Visit:
    """A page opened in a fresh context, with every console error and outside request recorded."""

    def __init__(
        self, browser, site: str, doc: str, width: int = 1280, height: int = 900, dark: bool = False
    ):
        self.context = browser.new_context(
            viewport={"width": width, "height": height}, color_scheme="dark" if dark else "light"
        )
        self.errors: list[str] = []
        self.outside: list[str] = []
        host = urllib.parse.urlsplit(site).netloc

        def route(r):
            if urllib.parse.urlsplit(r.request.url).netloc == host or r.request.url.startswith("data:"):
                r.continue_()
            else:  # the site must work offline: nothing may come from elsewhere
                self.outside.append(r.request.url)
                r.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on(
            "response", lambda r: self.errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None
        )
        if dark:
            self.page.add_init_script(
                "localStorage.setItem('theme', 'dark'); localStorage.setItem('mode', 'dark');"
            )
        self.url = site + doc + ".html"
        self.page.goto(self.url, wait_until="load")
        self.page.wait_for_load_state("networkidle")

    def close(self) -> None:
        self.context.close()


def _wait_for_math(page) -> None:
    """Wait until MathJax (if the page has math) has typeset the page."""
    page.wait_for_function(
        "() => !document.querySelector('.math') || (window.MathJax && MathJax.startup"
        " && MathJax.startup.promise)",
        timeout=20000,
    )
    page.evaluate(
        "async () => { if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
        " await MathJax.startup.promise; }"
    )


@pytest.mark.parametrize("doc", PAGES)
def test_page_renders(browser, site, doc):
    v = Visit(browser, site, doc)
    page = v.page
    try:
        # every image loaded (lazy ones made eager first)
        broken = page.evaluate("""async () => {
            const imgs = Array.from(document.images);
            imgs.forEach(i => { i.loading = 'eager'; });
            await Promise.all(imgs.map(i => i.decode().catch(() => null)));
            return imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'));
        }""")
        assert not broken, f"{doc}: images that did not load: {broken}"
        # math rendered by MathJax, served from the site itself
        _wait_for_math(page)
        unrendered = page.evaluate("""() => Array.from(document.querySelectorAll('.math'))
            .filter(e => !e.querySelector('mjx-container') && !e.closest('mjx-container'))
            .map(e => e.textContent.slice(0, 40))""")
        assert not unrendered, f"{doc}: math not rendered: {unrendered[:5]}"
        n_math = page.evaluate("() => document.querySelectorAll('mjx-container').length")
        page.wait_for_load_state("networkidle")  # fonts MathJax asked for
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot = SHOTS / (doc.replace("/", "__") + ".png")
        page.screenshot(path=str(shot), full_page=True)
        weight = page.evaluate("""() => performance.getEntriesByType('navigation')
            .concat(performance.getEntriesByType('resource'))
            .reduce((n, e) => n + (e.decodedBodySize || e.transferSize || 0), 0)""")
        REPORT[doc] = {"page_bytes": weight, "screenshot_bytes": shot.stat().st_size, "math": n_math}
        assert not v.outside, f"{doc}: requests outside the site: {v.outside}"
        assert not v.errors, f"{doc}: console errors: {v.errors}"
        assert weight < MAX_PAGE_BYTES, (
            f"{doc}: {weight / 2**20:.1f} MB with its images and scripts (limit 5 MB)"
        )
    finally:
        v.close()


@pytest.mark.parametrize("doc", PAGES)
def test_figures_stay_opaque_in_dark_mode(browser, site, doc):
    v = Visit(browser, site, doc, dark=True)
    try:
        assert v.page.evaluate("() => document.documentElement.dataset.theme") == "dark"
        backgrounds = v.page.evaluate("""() => Array.from(document.querySelectorAll(
                '.bd-article .cell_output img, .bd-article figure img, .bd-article .cell_output svg'))
            .map(e => [e.getAttribute('src') || e.tagName, getComputedStyle(e).backgroundColor])""")
        for src, color in backgrounds:  # opaque and light: dark text and lines stay readable
            channels = [float(x) for x in color[color.index("(") + 1 : -1].split(",")]
            opaque = len(channels) == 3 or channels[3] == 1
            assert opaque and min(channels[:3]) >= 200, f"{doc}: {src} has background {color} in dark mode"
        assert not v.errors, f"{doc}: console errors: {v.errors}"
    finally:
        v.close()


@pytest.mark.parametrize("doc", PAGES)
def test_no_horizontal_overflow_on_a_phone(browser, site, doc):
    v = Visit(browser, site, doc, width=390, height=844)
    try:
        page = v.page
        sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert sizes[0] <= sizes[1], f"{doc}: page is {sizes[0]} px wide in a {sizes[1]} px viewport"
        # text may sit in a box the reader scrolls sideways (tables, code); elsewhere it must fit
        sticking_out = page.evaluate("""() => Array.from(document.querySelectorAll(
                'article p, article li, article h1, article h2, article h3, article dd, article dt'))
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .filter(e => { for (let p = e.parentElement; p; p = p.parentElement) {
                    const o = getComputedStyle(p).overflowX;
                    if (o === 'auto' || o === 'scroll') return false; }
                return true; })
            .map(e => e.tagName + ': ' + e.textContent.trim().slice(0, 50))""")
        assert not sticking_out, f"{doc}: text wider than the 390 px screen: {sticking_out[:5]}"
        page.screenshot(path=str(SHOTS / (doc.replace("/", "__") + ".390px.png")))
    finally:
        v.close()


def test_sidebar_reaches_every_page(browser, site):
    v = Visit(browser, site, PAGES[0])
    try:
        hrefs = v.page.evaluate("""() => Array.from(
            document.querySelectorAll('.bd-sidebar-primary a.reference')).map(a => a.href)""")
        reached = {urllib.parse.urlsplit(h).path.lstrip("/").removesuffix(".html") for h in hrefs}
        missing = [d for d in PAGES[1:] if d not in reached]
        assert not missing, f"the sidebar has no link to {missing}"
        for d in PAGES[1:]:
            assert v.page.request.get(site + d + ".html").status == 200
    finally:
        v.close()


def test_search_finds_backpropagation_in_the_micrograd_chapter(browser, site):
    micrograd = next(d for d in CHAPTERS if "micrograd" in d)
    v = Visit(browser, site, "search")
    try:
        v.page.goto(site + "search.html?q=backpropagation", wait_until="load")
        v.page.wait_for_function(
            "() => document.querySelectorAll('#search-results li a, ul.search li a').length > 0",
            timeout=20000,
        )
        found = v.page.evaluate(
            "() => Array.from(document.querySelectorAll('ul.search li a')).map(a => a.href)"
        )
        assert any(micrograd + ".html" in h for h in found), f"search results: {found}"
        assert not v.errors, v.errors
    finally:
        v.close()


def _home() -> str | None:
    """The project's published home (``repository.url`` in ``_config.yml``), or None when unset."""
    import sys

    import yaml

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import zth_pages

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    return zth_pages.repository_home((config.get("repository") or {}).get("url"))


@pytest.mark.parametrize("doc", CHAPTERS)
def test_chapter_opens_in_colab_and_downloads_as_notebook(browser, site, doc):
    """The .ipynb download always; Colab, repository and issues buttons only for a real home."""
    home = _home()
    v = Visit(browser, site, doc)
    try:
        links = v.page.evaluate(
            "() => Array.from(document.querySelectorAll('.article-header-buttons a, "
            ".header-article-items a')).map(a => a.href)"
        )
        colab = [h for h in links if h.startswith("https://colab.research.google.com/")]
        github = [h for h in links if h.startswith("https://github.com/")]
        ipynb = [h for h in links if h.endswith(".ipynb") and h.startswith(site)]
        assert ipynb, f"{doc}: no .ipynb download among {links}"
        if home is None:
            assert not colab and not github, f"{doc}: links to a home that is not set: {colab + github}"
        else:
            assert colab, f"{doc}: no Colab link among {links}"
            # Colab opens the executed notebook the site publishes under _sources/
            assert colab[0].endswith(f"/_sources/{doc}.ipynb"), colab[0]
            assert all(h.startswith(home) for h in github), github
        r = v.page.request.get(ipynb[0])
        assert r.status == 200
        nb = json.loads(r.body())
        has_setup = nb["cells"][0]["metadata"].get("zth") == "setup"
        assert has_setup == (home is not None), "an install cell exactly when there is a home"
        code = [c for c in nb["cells"][int(has_setup):] if c["cell_type"] == "code"]
        assert code and any("zth" in "".join(c["source"]) for c in code), (
            "the notebook holds the chapter's code"
        )
    finally:
        v.close()
