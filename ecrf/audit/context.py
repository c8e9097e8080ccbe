"""Who and why for every write: the one way services attach audit context.

pghistory copies the current context (user, url, reason) into each event row. Its
nested contexts merge their metadata into the outermost one and keep it until that
one exits, so a reason set by one service would stick to the next write of the same
request. And the context reaches PostgreSQL as transaction-local settings, so a write
after the block but in the same transaction would still carry it. `audited` sets the
user and reason for its block and afterwards puts the outer values back, or clears the
database's copy when there was no outer context.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pghistory
from django.db import connection
from pghistory import runtime

CLEAR_SQL = (
    "SELECT set_config('pghistory.context_id', '', true), "
    "set_config('pghistory.context_metadata', '', true)"
)


@contextmanager
def audited(*, by, reason: str) -> Iterator[None]:
    tracker = getattr(runtime._tracker, "value", None)
    outer = dict(tracker.metadata) if tracker is not None else None
    metadata = {"reason": reason}
    if by is not None:
        metadata["user"] = by.pk
    try:
        with pghistory.context(**metadata):
            yield
    finally:
        if tracker is not None:
            tracker.metadata.clear()
            tracker.metadata.update(outer)
    if tracker is None and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(CLEAR_SQL)


def audit_user_id() -> int | None:
    """The user of the audit context the current write runs in (None: none, or no user).

    For what is recorded beside the audit trail, in the same words: who changed verified
    data, resetting its verification (the form index).
    """
    tracker = getattr(runtime._tracker, "value", None)
    return tracker.metadata.get("user") if tracker is not None else None


def audit_reason() -> str:
    """The reason of the audit context the current write runs in ("" without one): for the
    review, which links a correction whose reason names a query to that query."""
    tracker = getattr(runtime._tracker, "value", None)
    return (tracker.metadata.get("reason") or "") if tracker is not None else ""
