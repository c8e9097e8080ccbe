"""`csv`: one file per dataset (RFC 4180, UTF-8) and `dictionary.csv`.

One row per patient × visit × form instance: the keys (subject code, site, visit code,
visit date, form status), then the items under their dictionary names; coded answers as
their codes, yes/no as 1/0, dates ISO 8601 (a partial AE onset stays `YYYY-MM`), a JSON
answer as JSON, empty for missing. Each dataset's file is a COPY of its query with the
values formatted by PostgreSQL (sql_text.py), only written here; the other files (the
dictionary, and the mapping and audit files other writers make with `write_csv`) go
through `cell()`, the same rules.
"""

from __future__ import annotations

import csv
import queue
import threading
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

from django.db import connection

from ecrf.exports.dictionary import DICTIONARY_COLUMNS, as_text, dictionary_row
from ecrf.exports.sql_text import CrlfRecords, csv_copy
from ecrf.exports.writers import Writer


def cell(value) -> str:
    """A value as the CSV writes it: codes as codes, ISO 8601 dates, empty for missing."""
    return "" if value is None else as_text(value, yes="1", no="0")


# Rows read and written at a time (the progress told once for them), and the batches read
# ahead of the writing at most: memory stays flat.
BATCH, QUEUED = 1000, 4


def write_csv(path: Path, header: Iterable[str], rows: Iterable[Iterable], tick=None) -> int:
    """Write the rows' values as cell() writes them, as they come (RFC 4180, UTF-8); the
    rows written. `tick(n)` hears of the rows read a batch at a time.

    The rows are read here and converted and written by a thread of this writer, a few
    batches behind: the database prepares the next rows (the wait on it frees the
    interpreter) while the last ones are written. Only this thread touches the connection.
    """
    batches: queue.Queue = queue.Queue(maxsize=QUEUED)
    failed: list[BaseException] = []

    def drain() -> None:
        try:
            with path.open("w", encoding="utf-8", newline="") as file:
                writer = csv.writer(file, lineterminator="\r\n")
                writer.writerow(header)
                while (batch := batches.get()) is not None:
                    writer.writerows([cell(value) for value in row] for row in batch)
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


def write_dataset(path: Path, dataset, tick=None) -> int:
    """The dataset's rows as CSV records, a `COPY` of its query with the values formatted
    by PostgreSQL (sql_text.py), written as they stream; the rows written."""
    records = CrlfRecords()
    with path.open("wb") as file, connection.cursor() as cursor:
        file.write((",".join(column.name for column in dataset.columns) + "\r\n").encode())
        with cursor.cursor.copy(csv_copy(dataset)) as copy:
            for block in copy:
                before = records.records
                file.write(records(bytes(block)))
                if tick is not None and records.records > before:
                    tick(records.records - before)
    return records.records


def write(context) -> list[dict]:
    folder = context.folder("csv")
    files = []
    for dataset in context.datasets:
        path = folder / f"{dataset.code}.csv"
        files.append(context.entry(path, write_dataset(path, dataset, context.tick)))
    path = folder / "dictionary.csv"
    rows = write_csv(path, DICTIONARY_COLUMNS, map(dictionary_row, context.dictionary))
    files.append(context.entry(path, rows))
    return files


WRITERS = {"csv": Writer(write=write)}
