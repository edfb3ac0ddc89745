"""The ``zth`` command, run as a user runs it: ``python -m zth ...`` in a subprocess."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_MIRROR = os.environ.get("ZTH_DATA_DIR")  # conftest points it at ../shared/data when that exists
SHARED = Path(_MIRROR) if _MIRROR and Path(_MIRROR).is_dir() else None


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("ZTH_TRACEBACK", None)
    # no test may download: any HTTP(S) request goes to a closed local port and fails at once
    env.update(
        https_proxy="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        no_proxy="",
    )
    env.update(extra)
    return env


def zth(
    *args: str, env: dict[str, str] | None = None, code: str | None = None
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "zth", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env or _env(), cwd=ROOT, timeout=120)


def assert_one_line_error(r: subprocess.CompletedProcess, *fragments: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_help_lists_every_command_and_the_option_convention():
    r = zth("--help")
    assert r.returncode == 0, r.stderr
    for word in (
        "data",
        "doctor",
        "scoreboard",
        "gpt",
        "gpt2",
        "tokenizer",
        "llama",
        "--device",
        "--out",
        "--seed",
        "--preset",
        "--set KEY=VALUE",
    ):
        assert word in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["data", "--help"],
        ["data", "fetch", "--help"],
        ["data", "path", "--help"],
        ["data", "list", "--help"],
        ["doctor", "--help"],
        ["scoreboard", "--help"],
        ["gpt", "--help"],
        ["gpt2", "--help"],
        ["llama", "--help"],
    ],
)
def test_every_subcommand_has_help(args):
    r = zth(*args)
    assert r.returncode == 0, r.stderr
    assert "usage: zth" in r.stdout


def test_version_matches_the_package():
    import zth as package

    r = zth("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"zth {package.__version__}"


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["nonsense"], "invalid choice"),
        (["data"], "required"),
        (["data", "fetch"], "--all"),
        (["data", "fetch", "names", "--all"], "not both"),
        (["data", "path", "no-such-dataset"], "unknown dataset 'no-such-dataset'"),
        (["data", "fetch", "names", "tiktoken:nope"], "unknown dataset 'tiktoken:nope'"),
        (["gpt", "fly"], "unknown action 'fly'"),
        (["doctor", "--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, fragment):
    assert_one_line_error(zth(*args), fragment)


def test_group_without_action_shows_its_actions_and_fails():
    r = zth("gpt")
    assert r.returncode == 2
    assert "train" in r.stderr and "sample" in r.stderr


@pytest.mark.skipif(SHARED is None, reason="needs the offline data mirror ../shared/data")
def test_data_path_list_and_fetch_from_the_mirror(tmp_path):
    env = _env(ZTH_DATA_DIR=str(SHARED), ZTH_CACHE_DIR=str(tmp_path / "cache"))
    r = zth("data", "path", "names", env=env)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == SHARED / "names.txt"
    r = zth("data", "list", env=env)
    assert r.returncode == 0, r.stderr
    from zth import data

    for name in data.REGISTRY:
        assert name in r.stdout
    assert "present" in r.stdout
    r = zth("data", "fetch", "names", "shakespeare", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("ok ") == 2


def test_fetch_reports_each_dataset_and_fails_once_when_one_cannot_be_fetched(tmp_path):
    # empty mirror and cache, no network: every dataset fails with its own one-line reason
    (tmp_path / "mirror").mkdir()
    env = _env(
        ZTH_DATA_DIR=str(tmp_path / "mirror"),
        ZTH_CACHE_DIR=str(tmp_path / "cache"),
        TIKTOKEN_CACHE_DIR=str(tmp_path / "tiktoken"),
        ZTH_DATA_URL="http://127.0.0.1:9",  # nothing listens there: offline, even with internet
    )
    r = zth("data", "fetch", "tinystories_train", "names", env=env)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr
    assert lines[0].startswith("FAILED  tinystories_train:") and "offline?" in lines[0]
    assert str(tmp_path / "mirror" / "tinystories" / "tinystories_train_sample.txt") in lines[0]
    assert lines[1].startswith("FAILED  names:") and "ZTH_DATA_DIR" in lines[1]
    assert lines[-1] == "zth: error: 2 of 2 could not be fetched"
    assert not list((tmp_path / "cache").rglob("*.txt")), "a failed download must leave no file"


@pytest.mark.skipif(SHARED is None, reason="needs the offline data mirror ../shared/data")
def test_fetch_all_covers_datasets_and_tiktoken_files(tmp_path):
    env = _env(
        ZTH_DATA_DIR=str(SHARED),
        ZTH_CACHE_DIR=str(tmp_path / "cache"),
        TIKTOKEN_CACHE_DIR=str(SHARED / "tiktoken_cache"),
        ZTH_DATA_URL="http://127.0.0.1:9",
    )
    r = zth("data", "fetch", "--all", env=env)
    from zth import data

    present = {n for n, ds in data.REGISTRY.items() if (SHARED / ds.filename).is_file()}
    for name in present | {"tiktoken:gpt2", "tiktoken:cl100k_base"}:
        assert f"ok      {name}  " in r.stdout, (name, r.stdout, r.stderr)
    missing = set(data.REGISTRY) - present  # e.g. the official HellaSwag file: cannot download here
    assert r.returncode == (2 if missing else 0), r.stderr
    for name in missing:
        assert f"FAILED  {name}:" in r.stderr


def test_doctor_reports_python_torch_graphviz_tiktoken_and_datasets(tmp_path):
    env = _env(ZTH_DATA_DIR=str(SHARED or tmp_path), TIKTOKEN_CACHE_DIR=str(tmp_path / "empty"))
    r = zth("doctor", env=env)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    import torch

    assert f"{sys.version_info.major}.{sys.version_info.minor}" in out
    assert torch.__version__ in out
    assert "device" in out and "graphviz" in out
    assert "tiktoken gpt2" in out and "not cached" in out  # the empty cache given above
    from zth import data

    for name in data.REGISTRY:
        assert f"data {name}" in out


# A stand-in lecture tool, registered in TOOLS by the subprocess, to test the dispatch itself.
FAKE_TOOL = textwrap.dedent("""
    import sys
    def main(argv=None):
        argv = list(argv or [])
        if argv[:1] == ["--help"]:
            print("usage: zth demo run [--preset NAME]")
            return 0
        if argv[:1] == ["boom"]:
            raise ValueError("unknown preset 'boom'; known: book, tiny")
        if argv[:1] == ["crash"]:
            raise RuntimeError("CUDA error: something\\nsecond line of detail\\nthird")
        if argv[:1] == ["exit"]:
            raise SystemExit(int(argv[1]))
        print("ran with", argv)
        return 0
""")

RUN_WITH_FAKE = textwrap.dedent("""
    import sys
    from zth import cli
    cli.TOOLS.append(cli.Tool("demo run", ("zth_fake_missing.tool", "fake_tool"), "a test tool"))
    cli.TOOLS.append(cli.Tool("ghost", ("zth.ghost_module_that_does_not_exist",), "never there"))
    cli.TOOLS.append(cli.Tool("needy", ("needs_dep",), "imports a missing dependency"))
    sys.exit(cli.main(sys.argv[1:]))
""")


@pytest.fixture
def fake_env(tmp_path):
    (tmp_path / "fake_tool.py").write_text(FAKE_TOOL)
    (tmp_path / "needs_dep.py").write_text(
        "import a_dependency_nobody_installed\ndef main(argv):\n    return 0\n"
    )
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    return env


def test_tool_dispatch_passes_argv_and_exit_codes(fake_env):
    r = zth("demo", "run", "--preset", "book", "--set", "lr=3e-4", env=fake_env, code=RUN_WITH_FAKE)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ran with ['--preset', 'book', '--set', 'lr=3e-4']"
    r = zth("demo", "run", "--help", env=fake_env, code=RUN_WITH_FAKE)
    assert r.returncode == 0 and r.stdout.startswith("usage: zth demo run")
    r = zth("demo", "run", "exit", "3", env=fake_env, code=RUN_WITH_FAKE)
    assert r.returncode == 3


def test_tool_errors_are_one_line(fake_env):
    r = zth("demo", "run", "boom", env=fake_env, code=RUN_WITH_FAKE)
    assert_one_line_error(r, "zth: error: unknown preset 'boom'; known: book, tiny")
    r = zth("demo", "run", "crash", env=fake_env, code=RUN_WITH_FAKE)
    assert_one_line_error(r, "RuntimeError: CUDA error: something")
    r = zth("ghost", env=fake_env, code=RUN_WITH_FAKE)
    assert_one_line_error(r, "'zth ghost' is not available in this installation")
    r = zth("needy", env=fake_env, code=RUN_WITH_FAKE)
    assert_one_line_error(r, "needs the Python package 'a_dependency_nobody_installed'")


def test_traceback_on_request(fake_env):
    fake_env["ZTH_TRACEBACK"] = "1"
    r = zth("demo", "run", "boom", env=fake_env, code=RUN_WITH_FAKE)
    assert r.returncode == 1 and "Traceback" in r.stderr


@pytest.mark.parametrize("command", ["gpt train", "gpt sample", "gpt2 train", "gpt2 chars", "tokenizer",
                                     "llama train"])
def test_lecture_tools_run_or_say_they_are_missing(command):
    """Each registered tool either shows its module's --help or says plainly it is not installed."""
    from zth.cli import TOOLS

    tool = next(t for t in TOOLS if t.command == command)

    def exists(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            return False

    r = zth(*command.split(), "--help")
    if any(exists(m) for m in tool.modules):
        assert r.returncode == 0, r.stderr
        assert "usage" in r.stdout.lower()
    else:
        assert_one_line_error(r, f"'zth {command}' is not available")


def test_license_is_mit_spdx_without_setuptools_warnings():
    import warnings

    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    assert '\nlicense = "MIT"\n' in (ROOT / "pyproject.toml").read_text()
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the zth contributors" in text
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert dist.metadata.license_expression == "MIT"
    assert not [w for w in caught if "license" in str(w.message).lower()], [str(w.message) for w in caught]
