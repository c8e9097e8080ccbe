"""`csv`: one file per dataset (RFC 4180, UTF-8) and `dictionary.csv`.

One row per patient × visit × form instance: the keys (subject code, site, visit code,
visit date, form status), then the items under their dictionary names; coded answers as
their codes, yes/no as 1/0, dates ISO 8601 (a partial AE onset stays `YYYY-MM`),
empty for missing.
"""

from __future__ import annotations

import csv
import queue
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import islice
from pathlib import Path

from django.db import models

from ecrf.exports.dictionary import DICTIONARY_COLUMNS, dictionary_row
from ecrf.exports.writers import Writer


def cell(value) -> str:
    """A value as the CSV writes it: codes as codes, ISO 8601 dates, empty for missing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


# Field types whose values the csv module already writes as cell() would (str() of a text,
# an integer, a float or a date; None as empty): no conversion, no call per cell.
_AS_IS = (models.CharField, models.TextField, models.IntegerField, models.FloatField)
_AS_IS_TYPES = frozenset({"text", "integer", "float", "date"})
# Rows read and written at a time (the progress told once for them), and the batches read
# ahead of the writing at most: memory stays flat.
BATCH, QUEUED = 1000, 4


def _yes_no(value) -> str:
    return "1" if value else "0"


def _decimal(value) -> str:
    return format(value, "f")


def _instant(value) -> str:
    return value.astimezone(UTC).isoformat()


def converter(column) -> Callable | None:
    """How a column's values become cells (None: the csv module's own str() is cell()'s),
    from its model field, or its type for a key column that has none."""
    field = column.field
    if field is None:
        return None if column.type in _AS_IS_TYPES else cell
    if isinstance(field, models.BooleanField):
        return _yes_no
    if isinstance(field, models.DecimalField):
        # A numeric of at most 6 places reads back as a Decimal whose str() is already
        # fixed-point (scientific notation starts below 1e-6).
        return None if field.decimal_places <= 6 else _decimal
    if isinstance(field, models.DateTimeField):
        return _instant
    if isinstance(field, models.DateField) or (
        isinstance(field, _AS_IS) and not isinstance(field, models.JSONField)
    ):
        return None
    return cell


def write_csv(
    path: Path, header: Iterable[str], rows: Iterable[Iterable], tick=None, converters=None
) -> int:
    """Write the rows as they come (RFC 4180, UTF-8); the rows written.

    `converters` (one per column, None for a column written as it is) replace cell() on
    every value; `tick(n)` hears of the rows read a batch at a time.

    The rows are read here and converted and written by a thread of this writer, a few
    batches behind: the database prepares the next rows (the wait on it frees the
    interpreter) while the last ones are written. Only this thread touches the connection.
    """
    convert = _row_converter(converters)
    batches: queue.Queue = queue.Queue(maxsize=QUEUED)
    failed: list[BaseException] = []

    def drain() -> None:
        try:
            with path.open("w", encoding="utf-8", newline="") as file:
                writer = csv.writer(file, lineterminator="\r\n")
                writer.writerow(header)
                while (batch := batches.get()) is not None:
                    writer.writerows(map(convert, batch))
        except BaseException as exc:  # raised again by the reading thread
            failed.append(exc)
            while batches.get() is not None:
                pass

    writing = threading.Thread(target=drain, name=f"csv {path.name}", daemon=True)
    writing.start()
    count = 0
    rows = iter(rows)
    try:
        while not failed and (batch := list(islice(rows, BATCH))):
            batches.put(batch)
            count += len(batch)
            if tick is not None:
                tick(len(batch))
    finally:
        batches.put(None)
        writing.join()
    if failed:
        raise failed[0]
    return count


def _row_converter(converters) -> Callable:
    if converters is None:
        return lambda row: [cell(value) for value in row]
    indexed = [(index, convert) for index, convert in enumerate(converters) if convert]
    if not indexed:
        return lambda row: row

    def convert_row(row):
        row = list(row)
        for index, convert in indexed:
            value = row[index]
            if value is not None:
                row[index] = convert(value)
        return row

    return convert_row


def write(context) -> list[dict]:
    folder = context.folder("csv")
    files = []
    for dataset in context.datasets:
        path = folder / f"{dataset.code}.csv"
        header = [column.name for column in dataset.columns]
        converters = [converter(column) for column in dataset.columns]
        rows = write_csv(path, header, dataset.rows(), context.tick, converters)
        files.append(context.entry(path, rows))
    path = folder / "dictionary.csv"
    rows = write_csv(path, DICTIONARY_COLUMNS, map(dictionary_row, context.dictionary))
    files.append(context.entry(path, rows))
    return files


WRITERS = {"csv": Writer(write=write)}
