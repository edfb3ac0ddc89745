"""The package on its own: ``pip install .`` (no extras) into a clean virtual environment.

The environment is new and empty (no system site-packages); torch is installed first at the
version this test runs under (set ``ZTH_TEST_TORCH`` to another pip requirement to change it),
so that pip does not pull a different build. Slow: a couple of minutes, mostly installing torch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "numpy", "matplotlib", "tiktoken", "transformers", "graphviz", "tqdm", "jupyter_book")


def _sources(dest: Path) -> Path:
    """Copy what git would ship (tracked and new, not ignored files) to ``dest``."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    import torch

    tmp = tmp_path_factory.mktemp("package")
    src = _sources(tmp / "src")
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    bin_dir = tmp / "venv" / ("Scripts" if os.name == "nt" else "bin")
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    torch_req = os.environ.get("ZTH_TEST_TORCH") or f"torch=={torch.__version__.split('+')[0]}"
    for args in ([torch_req], [str(src)]):
        r = subprocess.run([*pip, *args], capture_output=True, text=True, env=_clean_env(), cwd=tmp)
        assert r.returncode == 0, f"pip install {args}: {r.stderr[-2000:]}"
    return {"bin": bin_dir, "python": str(bin_dir / "python"), "src": src, "tmp": tmp}


def run(installed, *cmd: str) -> subprocess.CompletedProcess:
    # run outside the source tree, so that only the installed package can be imported
    return subprocess.run(
        list(cmd), capture_output=True, text=True, env=_clean_env(), cwd=installed["tmp"], timeout=300
    )


def test_import_gives_the_installed_version(installed):
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    r = run(installed, installed["python"], "-c", "import zth; print(zth.__version__); print(zth.__file__)")
    assert r.returncode == 0, r.stderr
    got, where = r.stdout.split()
    assert got == version
    assert "site-packages" in where


def test_import_is_light(installed):
    """``import zth`` (and the command-line module) pull in none of the heavy libraries."""
    code = (
        "import sys, time; t = time.perf_counter(); import zth, zth.cli; "
        "print(round(time.perf_counter() - t, 3)); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    r = run(installed, installed["python"], "-c", code)
    assert r.returncode == 0, r.stderr
    seconds, loaded = (r.stdout.splitlines() + [""])[:2]
    print(f"import zth, zth.cli: {seconds} s in a fresh interpreter")
    assert loaded == "", f"import zth imported {loaded}"


def test_only_runtime_dependencies_are_installed(installed):
    r = run(installed, installed["python"], "-m", "pip", "list", "--format=freeze")
    names = {line.split("==")[0].lower() for line in r.stdout.splitlines()}
    assert {"torch", "numpy", "matplotlib", "tiktoken", "regex", "tqdm", "graphviz"} <= names
    assert not names & {"jupyter-book", "myst-nb", "sphinx", "pytest", "transformers"}, names


def test_console_script_help_and_doctor(installed):
    zth = str(installed["bin"] / "zth")
    r = run(installed, zth, "--help")
    assert r.returncode == 0, r.stderr
    assert "doctor" in r.stdout and "data" in r.stdout
    r = run(installed, zth, "doctor")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "torch" in r.stdout and "jupyter-book" in r.stdout and "not installed" in r.stdout
    r = run(installed, installed["python"], "-m", "zth", "--version")
    assert r.returncode == 0 and r.stdout.startswith("zth ")


def test_scoreboard_reads_the_packaged_ledger(installed, tmp_path):
    """``zth scoreboard`` works outside a checkout: the ledger is package data."""
    zth = str(installed["bin"] / "zth")
    none = str(tmp_path / "none")
    r = run(installed, zth, "scoreboard", "--build", none, "--results", none)
    assert r.returncode == 0, r.stderr
    assert "| L3 | MLP dev loss | 2.1701 |" in r.stdout and "not yet run" in r.stdout


def test_wheel_builds_with_the_entry_point(installed, tmp_path):
    pytest.importorskip("build", reason="pip install build")
    r = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(installed["src"])],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (wheel,) = tmp_path.glob("zth-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "zth/__init__.py" in names and "zth/cli.py" in names and "zth/__main__.py" in names
    assert "zth/ledger.toml" in names  # the reproduction ledger ships as package data
    assert "zth = zth.cli:main" in entry_points
    assert not [n for n in names if n.startswith(("tests/", "book/", "benchmarks/"))]
