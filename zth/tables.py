"""Markdown tables of measured values, as the book's chapters show them.

``markdown_table(header, rows)`` returns a :class:`MarkdownTable`: ``str()`` of it is the table's
markdown, and a notebook (Jupyter, myst-nb) displays it rendered, through ``_repr_markdown_``,
without this module importing IPython.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["MarkdownTable", "markdown_table"]


@dataclass(frozen=True)
class MarkdownTable:
    """A markdown table that notebooks display as a table."""

    text: str

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return self.text


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> MarkdownTable:
    """A markdown table from a header and rows of already formatted cells (``str`` of each)."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return MarkdownTable("\n".join(lines))
