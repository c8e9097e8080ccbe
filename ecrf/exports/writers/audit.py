"""`audit`: the study-wide audit trail, `audit/audit_trail.csv` (RFC 4180, UTF-8).

One row per changed field of every event of the study's rows, oldest first: the event's
time (UTC, ISO 8601), the user, the site, the subject, the object (its model and id), the
field under its dictionary name, the old and the new value, the reason given, the action
(insert, update, delete). Only the events inside `--from`/`--to` when given. The rows are
read and written as they come (ecrf.exports.audit_trail); the progress counts events.
"""

from __future__ import annotations

from ecrf.exports.audit_trail import COLUMNS, audit_rows, event_count
from ecrf.exports.writers import Writer
from ecrf.exports.writers.csv_writer import write_csv


def _asked(context) -> dict:
    request = context.request
    return {
        "study": request.study,
        "sites": request.sites,
        "audit_from": request.audit_from,
        "audit_to": request.audit_to,
    }


def total(context) -> int:
    return event_count(**_asked(context))


def write(context) -> list[dict]:
    path = context.folder("audit") / "audit_trail.csv"
    rows = audit_rows(**_asked(context), unblinded=context.request.unblinded, tick=context.tick)
    return [context.entry(path, write_csv(path, COLUMNS, rows))]


WRITERS = {"audit": Writer(write=write, total=total)}
