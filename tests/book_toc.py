"""The book's pages as ``_toc.yml`` lists them (shared by the chapter and browser tests)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _files(entries: list[dict]) -> list[str]:
    out = []
    for e in entries or []:
        if "file" in e:
            out.append(e["file"])
        out += _files(e.get("sections", []))
    return out


def toc() -> tuple[str, dict[str, list[str]]]:
    """The root page and, per caption, the pages in order (docnames like ``book/01_micrograd``)."""
    data = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    parts = {p.get("caption", ""): _files(p.get("chapters", [])) for p in data.get("parts", [])}
    return data["root"], parts


def pages() -> list[str]:
    """Every page of the book, root first, in table-of-contents order."""
    root, parts = toc()
    return [root, *(f for files in parts.values() for f in files)]


def chapters() -> list[str]:
    """The lecture chapters (the pages under the "Lectures" caption)."""
    return toc()[1].get("Lectures", [])
