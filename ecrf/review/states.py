"""The review state of a form instance, and the one table of its transitions.

The state is held on the form index (`patients.FormIndexEntry`), one row per instance of
every form table and of the safety log, so that every screen reads it in the query that
already lists the forms:

- ``review_state`` "" (entered) or "verified";
- ``review_version``: the version of the instance the verification applies to (None:
  nothing verified yet). "verified" always goes with the current version (a database
  constraint); "" with the current version means some fields are verified, not all.

::

    entered ──── sdv_mark / sdv_mark_visit (monitor, data manager) ────▶ verified
       ▲                                                                     │
       └────── a change to the data (any save service, through form_index_sync) ◀┘

A change resets only what it changed (`ecrf.review.sdv`): the fields whose values differ
between the verified version and the new one are reset, the others stay verified.

Queries have their own statuses and moves here too (`QueryStatus`, `QUERY_TRANSITIONS`).

Room for what follows (issue 13): freezing and locking are a `DataLock` beside the state
(ecrf/patients/locks.py), not a state of their own, since a frozen form still gets
verified; signatures hold on visits and casebooks. A new state goes into `ReviewState`
and `TRANSITIONS` here, and nowhere else decides which move is allowed.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from ecrf.patients.models import FormIndexEntry


class ReviewState(models.TextChoices):
    """What `FormIndexEntry.review_state` holds."""

    ENTERED = "", _("entered")
    VERIFIED = "verified", _("source data verified")


# (from, to) -> what moves a form along it.
TRANSITIONS: dict[tuple[str, str], str] = {
    (ReviewState.ENTERED, ReviewState.VERIFIED): "sdv_mark, sdv_mark_visit",
    (ReviewState.VERIFIED, ReviewState.ENTERED): "a change to the data (form_index_sync)",
}


class TransitionRefused(Exception):
    """A move the table does not have: a programming error, never a user's."""


def transition_check(current: str, target: str) -> None:
    if current != target and (current, target) not in TRANSITIONS:
        raise TransitionRefused(f"no review transition from {current!r} to {target!r}")


def is_verified(entry: FormIndexEntry) -> bool:
    """The whole of the current version is verified."""
    return entry.review_state == ReviewState.VERIFIED and entry.review_version == entry.version


def is_partly_verified(entry: FormIndexEntry) -> bool:
    """Some fields of the current version are verified, not all."""
    return not is_verified(entry) and entry.review_version == entry.version


# -- queries -----------------------------------------------------------------------------------


class QueryStatus(models.TextChoices):
    """What `Query.status` holds.

    ::

        open ── query_answer / query_correct (site) ──▶ answered ── query_close ──▶ closed
                                                         │  ▲
                          query_reopen (reviewer) ◀──────┘  └── query_answer / query_correct
                                    │                                         ▲
                                    ▼                                         │
                                 reopened ────────────────────────────────────┘

    A reviewer may also close a query nobody answered (raised in error, or settled
    otherwise: the close message says how). Closed is final: a new question is a new query.
    """

    OPEN = "open", _("open")
    ANSWERED = "answered", _("answered")
    CLOSED = "closed", _("closed")
    REOPENED = "reopened", _("reopened")


# (from, to) -> the service that moves a query along it.
QUERY_TRANSITIONS: dict[tuple[str, str], str] = {
    (QueryStatus.OPEN, QueryStatus.ANSWERED): "query_answer, query_correct",
    (QueryStatus.REOPENED, QueryStatus.ANSWERED): "query_answer, query_correct",
    (QueryStatus.ANSWERED, QueryStatus.CLOSED): "query_close",
    (QueryStatus.OPEN, QueryStatus.CLOSED): "query_close",
    (QueryStatus.REOPENED, QueryStatus.CLOSED): "query_close",
    (QueryStatus.ANSWERED, QueryStatus.REOPENED): "query_reopen",
}


def query_transition_allowed(current: str, target: str) -> bool:
    return (current, target) in QUERY_TRANSITIONS


class CellState(models.TextChoices):
    """A form as the review screens show it: its review state read with the SDV plan.

    The matrix and the visit page count these; the later parts add their own marks
    beside them (open queries, frozen, locked, signed), not instead of them.
    """

    NOT_ENTERED = "not_entered", _("not entered")
    ENTERED = "entered", _("entered")  # in progress, or outside the SDV plan
    SDV_NEEDED = "sdv_needed", _("SDV needed")
    VERIFIED = "verified", _("verified")


def cell_state(entry: FormIndexEntry | None, *, required: bool) -> CellState:
    """A form instance's state on the screens; `required`: the SDV plan requires it."""
    if entry is None or entry.status == FormIndexEntry.Status.NOT_STARTED:
        return CellState.NOT_ENTERED
    if is_verified(entry):
        return CellState.VERIFIED
    if required and entry.status == FormIndexEntry.Status.COMPLETE:
        return CellState.SDV_NEEDED
    return CellState.ENTERED
