"""Write the small intersphinx inventories the book links external types with, offline.

The published ``objects.inv`` files cannot be downloaded while the book builds (CI has no
internet), so this script writes a small one per project from the list below: each type the
API reference names, and the page and anchor of its official documentation. ``_config.yml``
points intersphinx at the files. Run it after adding a type (``python book/_inventories/make.py``)
and commit the ``.inv`` files; ``tests/test_inventories.py`` checks that they match this list.

The URLs follow each project's documentation layout (Sphinx's ``#module.Name`` anchors):
docs.python.org's library pages, PyTorch's ``generated/<name>.html`` pages (and the pages that
document several classes: ``tensors.html``, ``tensor_attributes.html``), NumPy's
``reference/generated/<name>.html``, Matplotlib's ``api/_as_gen/<name>.html`` and graphviz's
``api.html``. Some entries are the names autodoc writes for a type (its defining module, such as
``torch.nn.modules.module.Module`` or ``torch._C.Generator``) or the abbreviations the annotations
use (``Path``, ``np.ndarray``): they point at the same page as the public name.
"""

from __future__ import annotations

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

# project -> (documentation root, version, [(name, role, page#anchor relative to the root), ...])
PY = "library/"
PROJECTS: dict[str, tuple[str, str, list[tuple[str, str, str]]]] = {
    "python": ("https://docs.python.org/3/", "3", [
        *((t, "class", f"{PY}functions.html#{t}") for t in ("int", "float", "bool", "object")),
        *((t, "class", f"{PY}stdtypes.html#{t}") for t in ("str", "bytes", "bytearray", "dict", "list", "tuple",
                                                            "set", "frozenset", "range", "memoryview")),
        ("None", "data", f"{PY}constants.html#None"),
        ("pathlib.Path", "class", f"{PY}pathlib.html#pathlib.Path"),
        ("Path", "class", f"{PY}pathlib.html#pathlib.Path"),
        ("os.PathLike", "class", f"{PY}os.html#os.PathLike"),
        *((f"collections.abc.{t}", "class", f"{PY}collections.abc.html#collections.abc.{t}")
          for t in ("Callable", "Iterable", "Iterator", "Sequence", "Mapping", "MutableMapping", "Generator")),
        ("contextlib.AbstractContextManager", "class", f"{PY}contextlib.html#contextlib.AbstractContextManager"),
        ("argparse.ArgumentParser", "class", f"{PY}argparse.html#argparse.ArgumentParser"),
        ("argparse.Namespace", "class", f"{PY}argparse.html#argparse.Namespace"),
        ("typing.Any", "data", f"{PY}typing.html#typing.Any"),
        ("random.Random", "class", f"{PY}random.html#random.Random"),
        ("io.TextIOBase", "class", f"{PY}io.html#io.TextIOBase"),
        ("subprocess.CompletedProcess", "class", f"{PY}subprocess.html#subprocess.CompletedProcess"),
        ("ValueError", "exception", f"{PY}exceptions.html#ValueError"),
        ("RuntimeError", "exception", f"{PY}exceptions.html#RuntimeError"),
        ("OSError", "exception", f"{PY}exceptions.html#OSError"),
    ]),
    "torch": ("https://docs.pytorch.org/docs/stable/", "2", [
        ("torch.Tensor", "class", "tensors.html#torch.Tensor"),
        ("torch.device", "class", "tensor_attributes.html#torch.device"),
        ("torch.dtype", "class", "tensor_attributes.html#torch.dtype"),
        ("torch.Generator", "class", "generated/torch.Generator.html#torch.Generator"),
        ("torch._C.Generator", "class", "generated/torch.Generator.html#torch.Generator"),
        ("torch.nn.Module", "class", "generated/torch.nn.Module.html#torch.nn.Module"),
        ("torch.nn.modules.module.Module", "class", "generated/torch.nn.Module.html#torch.nn.Module"),
        ("torch.nn.Parameter", "class", "generated/torch.nn.parameter.Parameter.html"
                                        "#torch.nn.parameter.Parameter"),
        ("torch.nn.parameter.Parameter", "class", "generated/torch.nn.parameter.Parameter.html"
                                                  "#torch.nn.parameter.Parameter"),
        ("torch.optim.Optimizer", "class", "optim.html#torch.optim.Optimizer"),
        ("torch.optim.optimizer.Optimizer", "class", "optim.html#torch.optim.Optimizer"),
        ("torch.optim.AdamW", "class", "generated/torch.optim.AdamW.html#torch.optim.AdamW"),
        ("torch.optim.adamw.AdamW", "class", "generated/torch.optim.AdamW.html#torch.optim.AdamW"),
        ("torch.autograd.Function", "class", "autograd.html#torch.autograd.Function"),
        ("torch.autograd.function.Function", "class", "autograd.html#torch.autograd.Function"),
    ]),
    "numpy": ("https://numpy.org/doc/stable/", "2", [
        ("numpy.ndarray", "class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
        ("np.ndarray", "class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
        ("numpy.random.RandomState", "class", "reference/random/legacy.html#numpy.random.RandomState"),
        ("numpy.random.mtrand.RandomState", "class", "reference/random/legacy.html#numpy.random.RandomState"),
    ]),
    "matplotlib": ("https://matplotlib.org/stable/", "3", [
        ("matplotlib.figure.Figure", "class", "api/_as_gen/matplotlib.figure.Figure.html#matplotlib.figure.Figure"),
        ("matplotlib.axes.Axes", "class", "api/_as_gen/matplotlib.axes.Axes.html#matplotlib.axes.Axes"),
        ("matplotlib.axes._axes.Axes", "class", "api/_as_gen/matplotlib.axes.Axes.html#matplotlib.axes.Axes"),
    ]),
    "graphviz": ("https://graphviz.readthedocs.io/en/stable/", "0.20", [
        ("graphviz.Digraph", "class", "api.html#graphviz.Digraph"),
        ("graphviz.graphs.Digraph", "class", "api.html#graphviz.Digraph"),
    ]),
}


def inventory(project: str, version: str, entries: list[tuple[str, str, str]]) -> bytes:
    """An ``objects.inv`` (Sphinx inventory version 2) for ``entries`` of the Python domain."""
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
              "# The remainder of this file is compressed using zlib.\n").encode()
    body = "".join(f"{name} py:{role} 1 {uri} -\n" for name, role, uri in sorted(entries))
    return header + zlib.compress(body.encode())


def main() -> None:
    for project, (_, version, entries) in PROJECTS.items():
        (HERE / f"{project}.inv").write_bytes(inventory(project, version, entries))


if __name__ == "__main__":
    main()
