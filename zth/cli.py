"""The ``zth`` command (also ``python -m zth``): one entry point for the shell.

Built-in subcommands: ``data`` (fetch, path, list), ``doctor`` and ``scoreboard``. The lecture
tools (training, sampling, tokenizers) live in their own modules, each exposing
``main(argv: list[str] | None = None) -> int``; :data:`TOOLS` maps a command such as
``zth gpt train`` to those modules, which are imported only when that command runs. A tool
whose module is not part of this installation ends with a one-line message and exit code 2.

Every failure ends the same way: one line on stderr, exit code 2, no traceback (set
``ZTH_TRACEBACK=1`` to see it).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import zth

__all__ = ["TOOLS", "Tool", "UsageError", "main"]


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


@dataclass(frozen=True)
class Tool:
    """A shell command served by a module's ``main(argv)``: the first module that exists wins."""

    command: str  # e.g. "gpt train"; a one-word command passes everything after it to the module
    modules: tuple[str, ...]
    help: str


#: The lecture tools. A new tool is one line here.
TOOLS: list[Tool] = [
    Tool("gpt train", ("zth.gpt.train",), "train the character-level GPT (lecture 7)"),
    Tool("gpt sample", ("zth.gpt.sample",), "sample text from a GPT checkpoint"),
    Tool(
        "gpt2 train",
        ("zth.gpt2.train",),
        "train GPT-2 (lecture 9); `torchrun -m zth gpt2 train` for many GPUs",
    ),
    Tool("gpt2 chars", ("zth.gpt2.chars",), "train GPT-2 with chapter 11's modern switches on characters"),
    Tool(
        "tokenizer",
        ("zth.tokenizer.cli", "zth.tokenizer.__main__"),
        "train, encode and decode BPE tokenizers (lecture 8)",
    ),
    Tool("llama train", ("zth.llama.train",), "train a small Llama 2 on TinyStories"),
]

CONVENTIONS = """\
shared options of the training tools (each tool's --help lists its own):
  --preset NAME       a named configuration (e.g. `book`, `shakespeare`, `tiny`, `gpt2-124m`)
  --set KEY=VALUE     override one field of the preset's config; repeat for more
  --device DEVICE     auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps
  --out DIR           run folder for metrics.jsonl, run.json and checkpoints
  --seed N            random seed (runs are reproducible)
  --resume            continue the run in --out exactly where it stopped
  --print-config      print the resolved configuration and exit

Any failure prints one line and exits with code 2; ZTH_TRACEBACK=1 shows the traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _one_line(e: BaseException) -> str:
    text = e.args[0] if isinstance(e, KeyError) and e.args else e
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    msg = lines[0] if lines else ""
    plain = (UsageError, ValueError, LookupError, OSError, zth.data.DataError)
    if not isinstance(e, plain) or not msg:
        msg = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
    return msg if len(msg) <= 400 else msg[:397] + "..."


def _load(tool: Tool) -> Callable[[list[str]], int | None]:
    for name in tool.modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and (name == e.name or name.startswith(e.name + ".")):
                continue  # this module (or its package) is not part of this installation
            raise UsageError(
                f"'zth {tool.command}' needs the Python package {e.name!r}, which is not installed"
            ) from None
        entry = getattr(module, "main", None)
        if not callable(entry):
            raise UsageError(f"{name} has no main(argv) function")
        return entry
    raise UsageError(
        f"'zth {tool.command}' is not available in this installation of zth "
        f"({' / '.join(tool.modules)} not found)"
    )


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(str(code), file=sys.stderr)  # sys.exit("message") from a tool: bad input
    return 2


def _tool_help(group: str, tools: list[Tool]) -> str:
    lines = [f"usage: zth {group} ACTION [options]", "", "actions:"]
    for t in tools:
        lines.append(f"  {t.command.split()[1]:<10} {t.help}")
    lines += ["", f"'zth {group} ACTION --help' shows the action's options.", "", CONVENTIONS]
    return "\n".join(lines)


def _run_tool(argv: list[str]) -> int:
    group = argv[0]
    tools = [t for t in TOOLS if t.command.split()[0] == group]
    whole = [t for t in tools if t.command == group]
    if whole:
        tool, rest = whole[0], argv[1:]
    else:
        if len(argv) < 2 or argv[1] in ("-h", "--help"):
            print(_tool_help(group, tools), file=sys.stdout if len(argv) > 1 else sys.stderr)
            return 0 if len(argv) > 1 else 2
        match = [t for t in tools if t.command == f"{group} {argv[1]}"]
        if not match:
            actions = ", ".join(t.command.split()[1] for t in tools)
            raise UsageError(f"unknown action {argv[1]!r} for 'zth {group}' (choose from {actions})")
        tool, rest = match[0], argv[2:]
    entry = _load(tool)
    try:
        takes_prog = "prog" in inspect.signature(entry).parameters
        return _exit_code(entry(rest, prog=f"zth {tool.command}") if takes_prog else entry(rest))
    except SystemExit as e:  # argparse inside the tool, or sys.exit
        return _exit_code(e.code)


def _cmd_data(args: argparse.Namespace) -> int:
    from zth import data

    if args.action == "list":
        for problem in data.problems():
            print(f"zth data: warning: {problem}", file=sys.stderr)
        width = max(map(len, data.REGISTRY))
        for name, ds in data.REGISTRY.items():
            state, _, detail = data.state(name)
            print(f"{name:<{width}}  {state:<8}  {ds.description}\n{'':<{width}}  {detail}")
        return 0
    if args.action == "path":
        print(data.path(args.name))
        return 0
    # fetch
    if args.all and args.names:
        raise UsageError("give dataset names or --all, not both")
    if not args.all and not args.names:
        raise UsageError(f"name a dataset (one of {', '.join(data.REGISTRY)}) or use --all")
    known = [*data.REGISTRY, *(f"tiktoken:{e}" for e in data.TIKTOKEN_FILES)]
    names = known if args.all else args.names
    for name in names:  # all input checked before anything is fetched
        if name not in known:
            raise UsageError(f"unknown dataset {name!r}; known: {', '.join(known)}")
    for problem in data.problems():
        print(f"zth data: warning: {problem}", file=sys.stderr)
    failed = 0
    from tqdm.auto import tqdm

    for name in tqdm(names, desc="fetching", unit="file", disable=not sys.stderr.isatty(), leave=False):
        try:
            if name.startswith("tiktoken:"):
                where = data.fetch_tiktoken(name.split(":", 1)[1])
            else:
                where = data.fetch(name, force=args.force)
            print(f"ok      {name}  {where}")
        except Exception as e:  # noqa: BLE001 - report every dataset, then fail once
            failed += 1
            print(f"FAILED  {name}: {_one_line(e)}", file=sys.stderr)
    if failed:
        raise UsageError(f"{failed} of {len(names)} could not be fetched")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from zth.doctor import report

    text, healthy = report()
    print(text)
    return 0 if healthy else 1


def _cmd_scoreboard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from zth.scoreboard import Scoreboard

    if not Path(args.build).is_dir():
        print(
            f"zth scoreboard: no book build in {args.build} (build the book first); "
            "showing recorded runs only",
            file=sys.stderr,
        )
    board = Scoreboard.from_build(args.build, args.results)
    print(board.markdown())
    return 0


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="zth",
        description="Neural Networks: Zero to Hero, as software.",
        epilog=CONVENTIONS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"zth {zth.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    d = sub.add_parser("data", help="fetch, locate and list the course's datasets")
    dsub = d.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = dsub.add_parser("fetch", help="download and verify datasets now, for offline use")
    f.add_argument("names", nargs="*", metavar="NAME", help="dataset names (see `zth data list`)")
    f.add_argument("--all", action="store_true", help="every dataset and tiktoken's GPT-2 / GPT-4 files")
    f.add_argument("--force", action="store_true", help="download again even if present")
    pth = dsub.add_parser("path", help="print a dataset's local path (fetching it if needed)")
    pth.add_argument("name", metavar="NAME")
    dsub.add_parser("list", help="every dataset and whether it is present")
    d.set_defaults(func=_cmd_data)

    doc = sub.add_parser("doctor", help="check Python, torch and device, Graphviz, tiktoken cache, datasets")
    doc.set_defaults(func=_cmd_doctor)

    s = sub.add_parser("scoreboard", help="print the book's headline numbers against the lectures'")
    s.add_argument("--build", default="_build/jupyter_execute", help="myst-nb output folder of a book build")
    s.add_argument("--results", default="results", help="folder of recorded runs (results/<family>/<run>/)")
    s.set_defaults(func=_cmd_scoreboard)

    groups: dict[str, list[Tool]] = {}
    for t in TOOLS:
        groups.setdefault(t.command.split()[0], []).append(t)
    for group, tools in groups.items():
        if len(tools) == 1 and tools[0].command == group:
            helps = tools[0].help
        else:
            helps = f"{' | '.join(t.command.split()[1] for t in tools)}: see 'zth {group} --help'"
        sub.add_parser(group, help=helps, add_help=False)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``zth`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in {t.command.split()[0] for t in TOOLS}:
            return _run_tool(argv)
        args = _parser().parse_args(argv)
        return args.func(args)
    except SystemExit as e:
        return _exit_code(e.code)
    except KeyboardInterrupt:
        print("zth: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place that turns errors into exit codes
        if os.environ.get("ZTH_TRACEBACK"):
            raise
        print(f"zth: error: {_one_line(e)}", file=sys.stderr)
        return 2
