"""The database as it was at an instant, computed in Python from the audit events: each
object's last event (in the order written) stamped at or before the instant, unless it is
its delete. Said independently of ecrf.exports.snapshot, to check it."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.utils import timezone

from ecrf.crfs.models import FORM_MODELS
from ecrf.exports.dictionary import export_fields
from ecrf.patients.models import Allocation, Patient, Visit
from ecrf.safety.models import AdverseEvent
from ecrf.studies.models import Site


def database_clock():
    """The database's own clock (no travel reaches it): what it stamps events with."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def keep_up_with_the_database(fixed_clock) -> None:
    """The tests' clock may be behind the real one the database stamps its events with;
    the application's clock never is (an instant the database stamped is not "future")."""
    stamped = database_clock()
    if stamped >= timezone.now():
        fixed_clock.move_to(stamped + timedelta(seconds=1))


def rows_at(model, at) -> dict[int, dict]:
    """Object id -> its row (the event's fields) at `at`, for the objects that existed."""
    events = model.pgh_event_models["insert"]
    found = {}
    for event in events.objects.order_by("pgh_id").values():
        if event["pgh_created_at"] <= at:
            found[event["pgh_obj_id"]] = event
    return {pk: row for pk, row in found.items() if row["pgh_label"] != "delete"}


def _last(value):
    return (value is None, value)  # NULLs last, as PostgreSQL sorts them ascending


def expected_datasets(study, at, *, forms, unblinded=False) -> dict[str, list[list]]:
    """Dataset code -> its rows at `at`, keys then variables, in the export's order."""
    patients, visits = rows_at(Patient, at), rows_at(Visit, at)
    sites = dict(Site.objects.values_list("pk", "code"))

    def patient_keys(row):
        patient = patients[row["patient_id"]]
        return [patient["subject_code"], sites[patient["site_id"]]]

    def value(field, row):
        value = row[field.attname]
        if field.is_relation and field.related_model is Patient and value is not None:
            return patients[value]["subject_code"]
        return value

    def mine(row):
        return patients[row["patient_id"]]["study_id"] == study.pk

    found = {}
    for code in forms:
        if code == AdverseEvent.FORM_CODE:
            fields = export_fields(AdverseEvent)
            rows = sorted(
                (r for r in rows_at(AdverseEvent, at).values() if mine(r)),
                key=lambda r: (patients[r["patient_id"]]["subject_code"], r["number"]),
            )
            found[code] = [[*patient_keys(r), *(value(f, r) for f in fields)] for r in rows]
            continue
        model = FORM_MODELS[code]
        fields = export_fields(model)

        def visit_of(row):
            return visits.get(row["visit_id"]) or {}

        rows = sorted(
            (r for r in rows_at(model, at).values() if mine(r)),
            key=lambda r: (
                patients[r["patient_id"]]["subject_code"],
                _last(visit_of(r).get("sequence")),
                _last(visit_of(r).get("repeat")),
                r["pgh_obj_id"],
            ),
        )
        found[code] = [
            [
                *patient_keys(r),
                visit_of(r).get("code"),
                visit_of(r).get("visit_date"),
                r["status"],
                *(value(f, r) for f in fields),
            ]
            for r in rows
        ]
    if unblinded:
        slots = sorted(
            (
                r
                for r in rows_at(Allocation, at).values()
                if r["patient_id"] is not None and r["study_id"] == study.pk
            ),
            key=lambda r: patients[r["patient_id"]]["subject_code"],
        )
        found["allocation"] = [
            [
                patients[r["patient_id"]]["subject_code"],
                sites[r["site_id"]],
                r["kit_number"],
                r["arm"],
            ]
            for r in slots
        ]
    return found
