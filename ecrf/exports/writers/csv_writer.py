"""`csv`: one file per dataset (RFC 4180, UTF-8) and `dictionary.csv`.

One row per patient × visit × form instance: the keys (subject code, site, visit code,
visit date, form status), then the items under their dictionary names; coded answers as
their codes, yes/no as 1/0, dates ISO 8601 (a partial AE onset stays `YYYY-MM`),
empty for missing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

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


def write_csv(path: Path, header: Iterable[str], rows: Iterable[Iterable], tick=None) -> int:
    """Write the rows as they come (RFC 4180, UTF-8); the rows written."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\r\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([cell(value) for value in row])
            count += 1
            if tick is not None:
                tick()
    return count


def write(context) -> list[dict]:
    folder = context.folder("csv")
    files = []
    for dataset in context.datasets:
        path = folder / f"{dataset.code}.csv"
        header = [column.name for column in dataset.columns]
        rows = write_csv(path, header, dataset.rows(), context.tick)
        files.append(context.entry(path, rows))
    path = folder / "dictionary.csv"
    rows = write_csv(path, DICTIONARY_COLUMNS, map(dictionary_row, context.dictionary))
    files.append(context.entry(path, rows))
    return files


WRITERS = {"csv": Writer(write=write)}
