"""The book's offline intersphinx inventories are the ones book/_inventories/make.py writes."""

from __future__ import annotations

import importlib.util
import posixpath
import zlib
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[1] / "book" / "_inventories"
spec = importlib.util.spec_from_file_location("make_inventories", FOLDER / "make.py")
make = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make)


def _body(data: bytes) -> str:
    header_end = data.index(b"compressed using zlib.\n") + len(b"compressed using zlib.\n")
    return zlib.decompress(data[header_end:]).decode()


@pytest.mark.parametrize("project", sorted(make.PROJECTS))
def test_committed_inventory_matches_the_list(project):
    root, version, entries = make.PROJECTS[project]
    committed = (FOLDER / f"{project}.inv").read_bytes()
    assert _body(committed) == _body(make.inventory(project, version, entries)), (
        f"run python book/_inventories/make.py and commit {project}.inv"
    )
    assert root.startswith("https://") and root.endswith("/")
    for name, _, uri in entries:
        page, _, anchor = uri.partition("#")
        assert page.endswith(".html") and anchor, f"{name}: {uri} needs a page and an anchor"


def test_sphinx_reads_the_inventories():
    sphinx_inventory = pytest.importorskip("sphinx.util.inventory")
    with open(FOLDER / "torch.inv", "rb") as f:
        inv = sphinx_inventory.InventoryFile.load(f, "https://docs.pytorch.org/docs/stable/", posixpath.join)
    assert inv["py:class"]["torch.Tensor"][2] == "https://docs.pytorch.org/docs/stable/tensors.html#torch.Tensor"
