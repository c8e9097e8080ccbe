"""One writer per export format, each in its own module; the service finds them here.

A format's module has `WRITERS = {format: Writer(...)}`; a format whose module does not
(yet) list it is refused by name. A `Writer` says how many rows it will write (for the
progress bar) and writes its files under `context.folder(format)`, reading only
`context.datasets` (and, for the audit formats, the audit trail), calling
`context.tick(n)` as rows go out, and returns the files' manifest entries
(`context.entry(path, rows)`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

# Format -> the module of its writer, in the order the screen offers them.
_MODULES = {
    "csv": "csv_writer",
    "xlsx": "xlsx_writer",
    "sas": "stats",
    "stata": "stats",
    "spss": "stats",
    "odm": "odm",
    "odm-audit": "odm",
    "sdtm": "sdtm",
    "audit": "audit",
}


def rows_total(context) -> int:
    """The rows of every dataset: what a writer of the datasets writes."""
    return sum(dataset.count() for dataset in context.datasets)


@dataclass(frozen=True)
class Writer:
    write: Callable  # (ExportContext) -> list[dict]
    total: Callable = rows_total  # (ExportContext) -> int


def _module(fmt: str):
    return import_module(f"{__name__}.{_MODULES[fmt]}")


def supported() -> tuple[str, ...]:
    return tuple(fmt for fmt in _MODULES if fmt in _module(fmt).WRITERS)


def planned() -> tuple[str, ...]:
    return tuple(fmt for fmt in _MODULES if fmt not in _module(fmt).WRITERS)


def writer(fmt: str) -> Writer:
    return _module(fmt).WRITERS[fmt]
