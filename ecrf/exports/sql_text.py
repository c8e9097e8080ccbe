"""Values written as text by PostgreSQL, for the writers whose files are only text (`csv`,
`odm`), and XML escaping for what Python writes around them.

A big study's files hold millions of values: parsing each into a Python object and
formatting it again (the csv module's `str()`, one lxml element per ItemData) made the
`csv` export more than twice and the `odm` export 30 to 40 times as slow as a `COPY` of
the same rows. Instead the dataset's own query (`Dataset.rows_query()`, now or as of the
cut-off) is wrapped in a SELECT that formats the values as the file writes them:
- `csv`: a `COPY … TO STDOUT (FORMAT csv)` of the values as `csv_writer.cell` writes them
  (yes/no as 1/0, ISO 8601 dates, instants in UTC, empty for missing), quoted by
  PostgreSQL as the csv module quotes; the writer turns the record ends into CRLF
  (RFC 4180) and writes the blocks as they stream.
- `odm`: each row's items as one string of `<ItemData ItemOID="…" Value="…"/>`
  (`concat()` skips the missing ones), the values as `odm_metadata.odm_value` writes them,
  escaped for an XML attribute, a non-repeating form's row inside its FormData and
  ItemGroupData; Python then nests the rows (subject → event → form) and adds the
  AuditRecords of the few items that changed. A JSON answer, whose keys Python sorts and
  jsonb orders by length, is read raw and formatted by `odm_value`. The rendering is most
  of the work: `reader_connections` lets other connections, reading the export's own
  snapshot, render some of the datasets at the same time.
The inner query's ORDER BY keeps its order: a subquery with a sort is scanned as sorted,
never flattened into the outer query.

tests/exports compare the files' values with `cell()` and `odm_value()` of the rows that
the other writers read.
"""

from __future__ import annotations

import json
import os
import queue
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import connection, models
from django.db.backends.postgresql.base import ServerSideCursor
from psycopg import IsolationLevel
from psycopg import sql as pg_sql

from ecrf.exports.datasets import Dataset
from ecrf.exports.dictionary import Variable
from ecrf.exports.odm_metadata import odm_value

# Characters XML 1.0 cannot hold: written as U+FFFD (lxml would refuse the whole export).
_CONTROL = [c for c in range(1, 32) if c not in (9, 10, 13)]
_REPLACEMENT = "\ufffd"
# Attribute values: the markup characters, and the white space an XML parser would
# otherwise normalise to a plain space.
_ATTRIBUTE_ESCAPES = (
    ("&", "&amp;"),
    ("<", "&lt;"),
    (">", "&gt;"),
    ('"', "&quot;"),
    ("\t", "&#9;"),
    ("\n", "&#10;"),
    ("\r", "&#13;"),
)
_ATTRIBUTE = str.maketrans(
    {**dict(_ATTRIBUTE_ESCAPES), **dict.fromkeys([0, *_CONTROL], _REPLACEMENT)}
)
_TEXT = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
    | dict.fromkeys([0, *_CONTROL], _REPLACEMENT)
)
# PostgreSQL allows 100 arguments to a function: longer rows concatenate several concat().
_CONCAT_ARGUMENTS = 90


# Most values (codes, OIDs, dates) need no escaping, which a regular expression tells
# several times faster than str.translate() escapes.
_PLAIN = re.compile(r"[^&<>\"\x00-\x1f]*")


_CONTROLS = re.compile(r"[\x00-\x1f]")


def attribute(value: str) -> str:
    if _PLAIN.fullmatch(value):
        return value
    if _CONTROLS.search(value):
        return value.translate(_ATTRIBUTE)
    # Markup characters only (a JSON answer's quotes): str.replace() is several times
    # faster than str.translate() with a table.
    for raw, escaped in _ATTRIBUTE_ESCAPES[:4]:
        value = value.replace(raw, escaped)
    return value


def text(value: str) -> str:
    return value if _PLAIN.fullmatch(value) else value.translate(_TEXT)


def _literal(value: str) -> str:
    """A SQL string literal; '%' doubled, the query being run with parameters."""
    return "'" + value.replace("'", "''").replace("%", "%%") + "'"


def _escaped(expression: str) -> str:
    """The text escaped for an attribute; most values need nothing, which one regular
    expression tells faster than the eight passes that escape."""
    control = "E'" + "".join(f"\\x{c:02x}" for c in _CONTROL) + "'"
    sql = f"translate({expression}, {control}, {_literal(_REPLACEMENT * len(_CONTROL))})"
    for raw, escaped in _ATTRIBUTE_ESCAPES:
        raw_sql = {"\t": "E'\\t'", "\n": "E'\\n'", "\r": "E'\\r'"}.get(raw, _literal(raw))
        sql = f"replace({sql}, {raw_sql}, {_literal(escaped)})"
    return f"CASE WHEN {expression} ~ E'[&<>\"\\x01-\\x1f]' THEN {sql} ELSE {expression} END"


def value_sql(column: str, variable: Variable, *, csv: bool = False) -> str | None:
    """SQL giving the column's value as `odm_value` writes it, escaped for an attribute
    (NULL: missing), or with `csv` as `cell()` writes it, for COPY to quote (NULL: empty);
    None when only Python formats it that way."""
    field = variable.field
    if isinstance(field, models.JSONField):
        return f"({column})::text" if csv else None
    if isinstance(field, models.BooleanField):
        if csv:
            return f"CASE WHEN {column} THEN '1' WHEN NOT {column} THEN '0' END"
        return f"({column})::text"
    if isinstance(field, (models.IntegerField, models.DecimalField)):
        # Digits; a numeric's own digits, as Python's format(Decimal, "f").
        return f"({column})::text"
    if isinstance(field, models.FloatField):
        # Python writes a whole float with ".0"; both write the shortest digits otherwise.
        return (
            f"CASE WHEN {column} = trunc({column}) AND abs({column}) < 1e16 "
            f"THEN trunc({column})::numeric::text || '.0' ELSE ({column})::text END"
        )
    if isinstance(field, models.DateTimeField):
        utc = f"({column} AT TIME ZONE 'UTC')"
        return (
            f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
            f"date_part('microseconds', {column})::bigint % 1000000 <> 0 "
            f"THEN to_char({utc}, '.US') ELSE '' END || '+00:00'"
        ).replace("%", "%%")
    if isinstance(field, models.DateField) or (field is None and variable.type == "date"):
        # A date's own text: YYYY-MM-DD under the export's DateStyle ISO (services._snapshot),
        # a quarter cheaper than to_char() over a study's dates.
        return f"({column})::text"
    if field is None or isinstance(field, (models.CharField, models.TextField, models.ForeignKey)):
        if csv:
            # An empty text as NULL: COPY writes it unquoted, as the csv module does ('').
            return f"NULLIF(({column})::text, '')"
        return _escaped(f"NULLIF(({column})::text, '')")
    return None


def _concat(parts: list[str]) -> str:
    chunks = [
        parts[start : start + _CONCAT_ARGUMENTS]
        for start in range(0, len(parts), _CONCAT_ARGUMENTS)
    ]
    return " || ".join(f"concat({', '.join(chunk)})" for chunk in chunks)


def item_data(oid: str, value) -> str:
    """One ItemData formatted in Python (a JSON answer); "" when missing."""
    if isinstance(value, str):
        value = json.loads(value)  # Django reads jsonb as its text
    value = odm_value(value)
    if value is None:
        return ""
    return f'<ItemData ItemOID="{oid}" Value="{attribute(value)}"/>'


@dataclass(frozen=True)
class RenderedQuery:
    """The wrapped query; its output rows hold the `head` columns, the `segments`, then
    the `tail` columns: (position, None) for a stretch of ItemData the query rendered,
    (position, oid) for a raw JSON value that `items()` formats. `whole`: one segment,
    rendered, between the `wrap` asked for (the row's body needs no Python)."""

    sql: str
    params: tuple
    segments: tuple[tuple[int, str | None], ...]
    wrap: tuple[str, str]

    @property
    def whole(self) -> bool:
        return len(self.segments) == 1 and self.segments[0][1] is None

    def items(self, row: tuple) -> str:
        """The row's ItemData, in the items' order, between the wrap."""
        if self.whole:
            return row[self.segments[0][0]]
        opening, closing = self.wrap
        return "".join(
            (
                opening,
                *(
                    row[position] if oid is None else item_data(oid, row[position])
                    for position, oid in self.segments
                ),
                closing,
            )
        )


def rendered_query(
    dataset: Dataset,
    items,
    extra: tuple[str, ...],
    head: list[str],
    tail: list[str],
    wrap: tuple[str, str] = ("", ""),
) -> RenderedQuery:
    """`dataset.rows_query(*extra)` wrapped: the `head` expressions, the items' ItemData
    (between the `wrap` text when the query renders them all), then the `tail`
    expressions; head and tail are SQL over the inner row's columns `r.c0`… (the
    dataset's columns, then `extra`). The inner query's ORDER BY keeps its order: a
    subquery with a sort is scanned as sorted, never flattened into the outer query."""
    inner, params = dataset.rows_query(*extra).query.sql_with_params()
    columns = [*dataset.columns]
    width = len(columns) + len(extra)
    select = list(head)
    segments, parts = [], []

    def flush():
        if parts:
            select.append(_concat(parts))
            segments.append((len(select) - 1, None))
            parts.clear()

    for item in items:
        sql = value_sql(f"r.c{item.index}", columns[item.index])
        if sql is None:
            flush()
            select.append(f"r.c{item.index}")
            segments.append((len(select) - 1, item.oid))
        else:
            parts.append(
                f"{_literal(f'<ItemData ItemOID="{item.oid}" Value="')} || {sql} || '\"/>'"
            )
    flush()
    if not segments:
        select.append("''")
        segments.append((len(select) - 1, None))
    if len(segments) == 1 and segments[0][1] is None and any(wrap):
        opening, closing = (_literal(text) for text in wrap)
        select[-1] = f"{opening} || {select[-1]} || {closing}"
    select += tail
    aliases = ", ".join(f"c{i}" for i in range(width))
    # The inner query is Django's, with its values as parameters; the rest is our literals.
    sql = f"SELECT {', '.join(select)} FROM ({inner}) AS r({aliases})"  # nosec B608  # see above
    return RenderedQuery(sql=sql, params=tuple(params), segments=tuple(segments), wrap=tuple(wrap))


class _Reader(threading.Thread):
    """Fetches a server-side cursor's next chunk while the writer writes this one, so that
    PostgreSQL renders the next rows while Python nests and writes these: the two work at
    once instead of in turn. The only thread that touches the cursor; psycopg's connection
    lock serialises its fetches with the other queries of the export's transaction."""

    def __init__(self, cursor, size: int) -> None:
        super().__init__(daemon=True, name=f"export-{cursor.name}")
        self.cursor, self.size = cursor, size
        self.chunks: queue.Queue = queue.Queue(maxsize=1)
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                chunk = self.cursor.fetchmany(self.size)
                self._put(chunk)
                if not chunk:
                    return
        except Exception as error:  # handed to the writer, raised in its thread
            self._put(error)

    def _put(self, item) -> None:
        while not self.stopped.is_set():
            try:
                self.chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def fetched(self) -> Iterator[list[tuple]]:
        while True:
            chunk = self.chunks.get()
            if isinstance(chunk, Exception):
                raise chunk
            if not chunk:
                return
            yield chunk

    def stop(self) -> None:
        self.stopped.set()
        self.join()


# The export transaction's snapshot (pg_export_snapshot()), when it is the outermost
# transaction: other connections can then read the same instant (`reader_connections`).
_SNAPSHOT: ContextVar[str | None] = ContextVar("export_snapshot", default=None)
# Connections reading at once, the export's own included: one per processor, at most 4.
_MOST_READERS = 4


@contextmanager
def snapshot_shared() -> Iterator[None]:
    """Inside the export's outermost REPEATABLE READ transaction: its snapshot exported
    for `reader_connections`, until the block ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        (name,) = cursor.fetchone()
    token = _SNAPSHOT.set(name)
    try:
        yield
    finally:
        _SNAPSHOT.reset(token)


def readers_wanted() -> int:
    """How many connections may read at once, the export's own included."""
    return max(1, min(len(os.sched_getaffinity(0)), _MOST_READERS))


@contextmanager
def reader_connections(count: int) -> Iterator[list]:
    """Up to `count` more connections, each in a read-only transaction that imports the
    export's snapshot (SET TRANSACTION SNAPSHOT): they see exactly what the export's own
    connection sees, so PostgreSQL can render several datasets at once, one backend (and
    processor) each. None when the export runs inside a caller's transaction (its
    uncommitted writes are not in a snapshot another connection can import)."""
    name = _SNAPSHOT.get()
    opened = []
    try:
        if name is not None:
            for _ in range(count):
                reader = connection.Database.connect(**connection.get_connection_params())
                opened.append(reader)
                reader.isolation_level = IsolationLevel.REPEATABLE_READ
                reader.read_only = True
                with reader.cursor() as cursor:
                    # The first statement of the transaction, as PostgreSQL requires.
                    cursor.execute(pg_sql.SQL("SET TRANSACTION SNAPSHOT {}").format(name))
                    cursor.execute("SET LOCAL DateStyle = 'ISO'")
                    cursor.execute(
                        pg_sql.SQL("SET LOCAL TimeZone = {}").format(connection.timezone_name)
                    )
                    role = connection.settings_dict["OPTIONS"].get("assume_role")
                    if role:
                        cursor.execute(
                            pg_sql.SQL("SET LOCAL ROLE {}").format(pg_sql.Identifier(role))
                        )
        yield opened
    finally:
        for reader in opened:
            reader.close()


def chunks_ahead(sql: str, params, size: int, on=None) -> Iterator[list[tuple]]:
    """The query's rows, `size` at a time, from a server-side cursor of the export's
    transaction (or of `on`, one of `reader_connections`), fetched ahead by a thread of
    their own."""
    name = f"export_{uuid.uuid4().hex}"
    if on is None:
        connection.ensure_connection()
        cursor = connection.create_cursor(name=name)
    else:
        # As Django makes its own: parameters bound client-side, as in connection.cursor().
        cursor = ServerSideCursor(on, name=name, scrollable=False, withhold=False)
    try:
        cursor.execute(sql, params)
        reader = _Reader(cursor, size)
        reader.start()
        try:
            yield from reader.fetched()
        finally:
            reader.stop()
    finally:
        cursor.close()


def csv_copy(dataset: Dataset) -> str:
    """`COPY (…) TO STDOUT (FORMAT csv)` of `dataset.rows_query()` with each value formatted
    as `cell()` writes it: PostgreSQL quotes the fields as the csv module does (a field
    with a comma, a quote or a line break; quotes doubled), NULL as an empty field. Its
    parameters are bound in the text (COPY takes none), by psycopg's own quoting."""
    inner, params = dataset.rows_query().query.sql_with_params()
    columns = dataset.columns
    fields = []
    for i, column in enumerate(columns):
        sql = value_sql(f"r.c{i}", column, csv=True)
        if sql is None:
            raise TypeError(f"{dataset.code}.{column.name}: no CSV format for this column.")
        fields.append(sql)
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    # The inner query is Django's, its values bound by psycopg; the rest is our literals.
    select = f"SELECT {', '.join(fields)} FROM ({inner}) AS r({aliases})"  # nosec B608  # see above
    return f"COPY ({connection.ops.compose_sql(select, params)}) TO STDOUT (FORMAT csv)"


class CrlfRecords:
    """COPY ends each record with LF; RFC 4180 (and the csv module) with CRLF. A line break
    ends a record only outside quotes, i.e. after an even number of quote characters (an
    escaped quote is two): each block is split at its quotes, and the LFs of the stretches
    outside quotes become CRLF, counted as the records written."""

    def __init__(self) -> None:
        self.quoted = False  # inside a quoted field at the end of the last block
        self.records = 0

    def __call__(self, block: bytes) -> bytes:
        if b'"' not in block:
            if self.quoted:
                return block
            self.records += block.count(b"\n")
            return block.replace(b"\n", b"\r\n")
        parts = block.split(b'"')
        for i, part in enumerate(parts):
            if (i % 2 == 0) != self.quoted:  # outside quotes
                self.records += part.count(b"\n")
                parts[i] = part.replace(b"\n", b"\r\n")
        if len(parts) % 2 == 0:  # an odd number of quotes: the state flips
            self.quoted = not self.quoted
        return b'"'.join(parts)
