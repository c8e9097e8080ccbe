"""The form index: what each visit holds, across every form table, kept by the save services.

A model whose instances are indexed (every case report form, the adverse event, the SAE
report) declares three small hooks, and this module reads nothing else of it:

- ``index_code()`` (classmethod): the form code its entries carry;
- ``index_entry()``: the instance's entry, an `IndexedForm` of its own columns;
- ``index_queryset()`` (classmethod, optional): the rows to compare, with what
  ``index_entry()`` reads of other tables already joined.

The save services call `form_index_sync` after saving an instance and `form_index_remove`
before deleting one, in the save's transaction, so the index and the tables change
together or not at all. A save that gives a verified instance (source data verification,
the review app) a new version resets its review in the same statement and sends
`signals.form_entry_changed`, so that the review app records what the change reset; every
new version sends `signals.form_entry_saved`, which voids the signatures covering it.
`form_index_problems` compares the index with the tables (``manage.py
form_index_check``); the models are found through Django's app registry, so this app
imports none of them.

Readers: the casebook (one query for every form of every visit), the visit page and visit
completion (`visit_lacks`), whose costs no longer grow with the number of form types.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import datetime

from django.apps import apps
from django.db import connection

from ecrf.patients.models import FormIndexEntry, Patient, Visit
from ecrf.patients.signals import form_entry_changed, form_entry_saved
from ecrf.studies.protocol import CULTURE_FORMS


@dataclass(frozen=True)
class IndexedForm:
    """What an instance says about itself in the index (the copied columns)."""

    form_code: str
    object_id: int
    patient_id: int
    visit_id: int | None
    status: str
    version: int
    updated_at: datetime
    key: str = ""


COPIED = [f.name for f in fields(IndexedForm) if f.name not in ("form_code", "object_id")]


# The review columns the review app writes (`form_entry_review`); a new version resets them.
REVIEW_COLUMNS = frozenset(
    {
        "review_state",
        "review_version",
        "verified_by",
        "verified_by_id",
        "verified_at",
        "sdv_reset_by",
        "sdv_reset_by_id",
        "sdv_reset_at",
    }
)


@functools.cache
def _upsert_sql() -> str:
    """Insert or update an entry and say what it was, in one statement.

    A version other than the one reviewed resets the review (state and reviewed version);
    the CTE reads the row as it was before the statement, which RETURNING cannot (before
    PostgreSQL 18's OLD), so the caller learns the previous version and review too. The
    caller holds the instance's row lock, which the review's services take too before
    they write the entry: the statement's snapshot is never older than a verification.
    """
    quote = connection.ops.quote_name
    table = quote(FormIndexEntry._meta.db_table)
    columns = [
        FormIndexEntry._meta.get_field(name).column for name in ("form_code", "object_id", *COPIED)
    ]
    copied = [FormIndexEntry._meta.get_field(name).column for name in COPIED]
    reset = "e.review_version IS NOT NULL AND e.review_version <> EXCLUDED.version"
    return (
        f"WITH previous AS (SELECT version, review_state, review_version FROM {table} "  # nosec B608  # names from the models' _meta, values as parameters
        "WHERE form_code = %s AND object_id = %s) "
        f"INSERT INTO {table} AS e ({', '.join(quote(c) for c in columns)}, review_state) "
        f"VALUES ({', '.join(['%s'] * len(columns))}, '') "
        "ON CONFLICT (form_code, object_id) DO UPDATE SET "
        + ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in copied)
        + f", review_state = CASE WHEN {reset} THEN '' ELSE e.review_state END"  # nosec B608  # names from the models' _meta, values as parameters
        f", review_version = CASE WHEN {reset} THEN NULL ELSE e.review_version END "
        "RETURNING e.id, e.review_state, e.review_version, e.verified_by_id, e.verified_at, "
        "e.sdv_reset_by_id, e.sdv_reset_at, (SELECT version FROM previous), "
        "(SELECT review_state FROM previous), (SELECT review_version FROM previous)"
    )


def form_index_sync(instance) -> FormIndexEntry:
    """Write the index entry of an instance just saved: inserted or updated in one query.

    When the save gave a reviewed instance a new version, the entry's review is reset in
    the same query, and `form_entry_changed` tells the review app (in the save's
    transaction and audit context) what it was before.
    """
    indexed = instance.index_entry()
    values = asdict(indexed)
    with connection.cursor() as cursor:
        cursor.execute(
            _upsert_sql(),
            [
                indexed.form_code,
                indexed.object_id,
                indexed.form_code,
                indexed.object_id,
                *(values[name] for name in COPIED),
            ],
        )
        (pk, state, reviewed, verified_by, verified_at, reset_by, reset_at, *previous) = (
            cursor.fetchone()
        )
    entry = FormIndexEntry(
        pk=pk,
        **values,
        review_state=state,
        review_version=reviewed,
        verified_by_id=verified_by,
        verified_at=verified_at,
        sdv_reset_by_id=reset_by,
        sdv_reset_at=reset_at,
    )
    entry._state.adding = False
    previous_version, previous_state, previous_reviewed = previous
    if previous_reviewed is not None and previous_reviewed != entry.version:
        form_entry_changed.send(
            sender=FormIndexEntry,
            entry=entry,
            previous_version=previous_version,
            previous_state=previous_state,
            previous_review_version=previous_reviewed,
        )
    if previous_version != entry.version:
        form_entry_saved.send(sender=FormIndexEntry, entry=entry, previous_version=previous_version)
    return entry


def form_entry_review(entry: FormIndexEntry, **columns) -> None:
    """Write an entry's review columns (the review app's states and marks): one query.

    Only the review columns: what the entry copies of its instance is form_index_sync's.
    """
    if unknown := set(columns) - REVIEW_COLUMNS:
        raise TypeError(f"not review columns of the form index: {', '.join(sorted(unknown))}")
    FormIndexEntry.objects.filter(pk=entry.pk).update(**columns)
    for name, value in columns.items():
        setattr(entry, name, value)


def form_index_remove(instance) -> None:
    """Remove the entry of an instance about to be deleted."""
    FormIndexEntry.objects.filter(form_code=instance.index_code(), object_id=instance.pk).delete()


# -- reading ---------------------------------------------------------------------------------


def visit_entries(visit: Visit) -> list[FormIndexEntry]:
    """The visit's form instances, every form type at once, oldest first (with who verified
    them and who reset their verification, for the review's card on the visit page)."""
    return list(
        FormIndexEntry.objects.filter(visit=visit)
        .select_related("verified_by", "sdv_reset_by")
        .order_by("form_code", "object_id")
    )


def required_keys(patient: Patient, form_code: str) -> tuple[str, ...]:
    """The instances a visit needs of a repeatable form, by key: one complete result per
    culture condition of the participant's group (the protocol's laboratory section)."""
    laboratory = patient.protocol_version.protocol.laboratory
    if form_code not in CULTURE_FORMS or laboratory is None:
        return ()
    return laboratory.conditions_for(patient.group)


def keys_lacking(patient: Patient, form_code: str, entries: Iterable[FormIndexEntry]) -> list[str]:
    """The required keys of a repeatable form with no complete instance among `entries`."""
    done = {
        e.key
        for e in entries
        if e.form_code == form_code and e.status == FormIndexEntry.Status.COMPLETE
    }
    return [key for key in required_keys(patient, form_code) if key not in done]


def visit_lacks(patient: Patient, form_code: str, entries: Iterable[FormIndexEntry]) -> bool:
    """Whether the visit (its `entries`) still lacks this form to be complete: a complete
    instance, or one per required key (culture condition) for a repeatable form."""
    entries = [e for e in entries if e.form_code == form_code]
    if required_keys(patient, form_code):
        return bool(keys_lacking(patient, form_code, entries))
    return not any(e.status == FormIndexEntry.Status.COMPLETE for e in entries)


# -- checking --------------------------------------------------------------------------------


def indexed_models() -> list[type]:
    """Every installed model whose instances are indexed (it declares `index_entry`)."""
    return [
        model
        for model in apps.get_models()
        if callable(getattr(model, "index_entry", None)) and hasattr(model, "index_code")
    ]


def _indexed(row: FormIndexEntry) -> IndexedForm:
    return IndexedForm(**{f.name: getattr(row, f.name) for f in fields(IndexedForm)})


def form_index_problems() -> list[str]:
    """How the index and the form tables disagree, one sentence per instance ([]: never).

    An instance missing from the index, an entry for an instance that does not exist (or
    for a form code no model indexes), and an entry whose copied columns differ.
    """
    problems = []
    codes = set()
    for model in indexed_models():
        code = model.index_code()
        codes.add(code)
        queryset = (
            model.index_queryset() if hasattr(model, "index_queryset") else model._default_manager
        )
        expected = {row.pk: row.index_entry() for row in queryset.all().iterator(chunk_size=2000)}
        indexed = {
            row.object_id: _indexed(row)
            for row in FormIndexEntry.objects.filter(form_code=code).iterator(chunk_size=2000)
        }
        for object_id in sorted(expected.keys() - indexed.keys()):
            problems.append(f"{code} #{object_id} is not in the form index")
        for object_id in sorted(indexed.keys() - expected.keys()):
            problems.append(f"the form index lists {code} #{object_id}, which does not exist")
        for object_id in sorted(expected.keys() & indexed.keys()):
            want, have = asdict(expected[object_id]), asdict(indexed[object_id])
            differ = [
                f"{name} {have[name]!r} instead of {want[name]!r}"
                for name in COPIED
                if want[name] != have[name]
            ]
            if differ:
                problems.append(f"{code} #{object_id}: the index says " + ", ".join(differ))
    for code in (
        FormIndexEntry.objects.exclude(form_code__in=codes)
        .values_list("form_code", flat=True)
        .distinct()
    ):
        problems.append(f"the form index lists {code} forms, which no model indexes")
    return problems
