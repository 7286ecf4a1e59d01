"""A results table as Markdown or CSV text: the one writer of the per-trial summary
(``orchestrator.summary``) and the per-configuration report (``orchestrator.report``).

A table is a header and rows of cells (strings, one per header column). Markdown is GitHub's pipe
table (a ``|`` inside a cell is escaped, so a cell never splits a row); CSV is Python's ``csv``
module (its default dialect: commas, quoting where needed).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

Rows = Sequence[Sequence[str]]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(header: Sequence[str], rows: Rows) -> str:
    """A pipe table: the header, the ``|---|`` line, then a line per row."""
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(_cell, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def csv_text(header: Sequence[str], rows: Rows) -> str:
    """The header and the rows as CSV (``csv.writer``, ``\\r\\n`` line ends as the csv module writes them)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
