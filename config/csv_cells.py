"""The one way the project writes CSV: text cells that a spreadsheet would run as a formula are
escaped.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a formula
by Excel, LibreOffice and Google Sheets (CSV injection: a system named ``=HYPERLINK(…)`` in a
metrics file). Such text cells get a leading apostrophe, which spreadsheets show as text and
hide. Numbers are written as they are, so a negative value stays a number.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as it may go into a CSV cell: a formula-leading string gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose rows go through ``safe_cell``; every CSV export writes with it."""

    def __init__(self, stream: Any, **options: Any) -> None:
        self._writer = csv.writer(stream, **options)

    def writerow(self, row: Sequence[Any]) -> None:
        self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.writerow(row)
