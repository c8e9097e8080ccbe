"""The study-wide audit trail as the export writes it: one row per changed field.

Every pghistory event of the rows that belong to the study (its forms, adverse events,
SAE reports and lab alerts, patients, visits, deviations, allocations and their lists,
locks, the review's queries, SDV marks and signatures, the study's memberships, sites,
protocol versions and exports), read in one query, oldest first, with a server-side
cursor. The old value of a field is the value of the previous event of the same object:
a window function (LAG over the object's events) computed before the date range is
applied, so that the first event inside the range still knows what it changed.

Blinded (the default): the values that reveal the allocation (an allocation's arm and
block layout, a list's seed and block sizes) are masked; the protocol file itself (which
names the arms) is identified by its checksum, never copied into the trail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pghistory.models
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection

from ecrf.patients.models import Patient
from ecrf.review.audit_trail import BLINDED_FIELDS
from ecrf.safety.models import SaeReport
from ecrf.studies.models import Site, Study, StudySite

CHUNK_SIZE = 2000
MASK = "[blinded]"

# The columns that reveal the allocation (masked unless the export is unblinded) are the
# ones the review's audit trail page hides: one list, BLINDED_FIELDS.
# Never written: the row's own key and the bookkeeping of the write (the version, the save
# times: the event has its own time); the protocol file (it names the arms: its sha256
# identifies it).
HIDDEN_FIELDS = frozenset({"id", "version", "updated_at", "entered_at"})
HIDDEN_BY_MODEL = {"studies.ProtocolVersion": frozenset({"definition"})}
PGH_COLUMNS = (
    "pgh_id",
    "pgh_created_at",
    "pgh_label",
    "pgh_context",
    "pgh_context_id",
    "pgh_obj_id",
)
ACTIONS = {"insert": "insert", "update": "update", "delete": "delete"}

COLUMNS = (
    "event_time_utc",
    "user",
    "site",
    "subject",
    "object",
    "object_id",
    "field",
    "old_value",
    "new_value",
    "reason",
    "action",
)


@dataclass(frozen=True)
class _Table:
    model: type  # the event model
    tracked: type  # the model it tracks
    sql: str
    params: list


def _event_models() -> list[tuple[type, type]]:
    found = []
    for model in apps.get_models():
        if not issubclass(model, pghistory.models.Event) or model._meta.proxy:
            continue
        tracked = getattr(model, "pgh_tracked_model", None)
        if tracked is not None:
            found.append((model, tracked))
    return sorted(found, key=lambda pair: pair[1]._meta.label)


def _patients_sql(study, sites) -> tuple[str, list]:
    sql = f"SELECT id FROM {Patient._meta.db_table} WHERE study_id = %s"  # nosec B608  # names from the models' _meta, values as parameters
    params: list = [study.pk]
    if sites:
        sql += " AND site_id = ANY(%s)"
        params.append([site.pk for site in sites])
    return sql, params


def _scope(model, tracked, study, sites) -> tuple[str, list, str, str] | None:
    """(WHERE, its params, the patient id expression, the site id expression) of the
    events of `model` that belong to the study; None when its rows belong to no study."""
    columns = {field.column for field in model._meta.concrete_fields}
    site_ids = [site.pk for site in sites]
    patients, patient_params = _patients_sql(study, sites)
    conditions, params = [], []
    patient, site = "NULL::bigint", "NULL::bigint"
    if tracked is Patient:
        conditions.append(f"e.pgh_obj_id IN ({patients})")
        params += patient_params
        patient = "e.pgh_obj_id"
    if tracked is SaeReport:
        events = tracked._meta.get_field("adverse_event").related_model._meta.db_table
        conditions.append(
            f"e.adverse_event_id IN (SELECT id FROM {events} WHERE patient_id IN ({patients}))"  # nosec B608  # names from the models' _meta, values as parameters
        )
        params += patient_params
        patient = f"(SELECT a.patient_id FROM {events} a WHERE a.id = e.adverse_event_id)"  # nosec B608  # names from the models' _meta, values as parameters
    if "patient_id" in columns:
        conditions.append(f"e.patient_id IN ({patients})")
        params += patient_params
        patient = "e.patient_id"
    if "study_id" in columns:
        condition = "e.study_id = %s"
        params.append(study.pk)
        if "site_id" in columns:
            site = "e.site_id"
            if sites:
                # A study-wide row (a database lock) concerns every site.
                condition += " AND (e.site_id IS NULL OR e.site_id = ANY(%s))"
                params.append(site_ids)
        elif sites and "sites" in columns:  # an export: of these sites, or of all of them
            condition += " AND (e.sites = '[]'::jsonb OR e.sites ?| %s)"
            params.append([s.code for s in sites])
        conditions.append(f"({condition})")
    if tracked is Study:
        conditions.append("e.pgh_obj_id = %s")
        params.append(study.pk)
    if tracked is Site:
        through = StudySite._meta.db_table
        sql = f"SELECT site_id FROM {through} WHERE study_id = %s"  # nosec B608  # names from the models' _meta, values as parameters
        params.append(study.pk)
        if sites:
            sql += " AND site_id = ANY(%s)"
            params.append(site_ids)
        conditions.append(f"e.pgh_obj_id IN ({sql})")
        site = "e.pgh_obj_id"
    if not conditions:
        return None
    return " OR ".join(conditions), params, patient, site


def _tables(study, sites) -> list[_Table]:
    tables = []
    for model, tracked in _event_models():
        scope = _scope(model, tracked, study, sites)
        if scope is None:
            continue
        where, params, patient, site = scope
        data = "to_jsonb(e) - %s::text[]"
        sql = (
            f"SELECT e.pgh_created_at AS at, %s::text AS model, e.pgh_id AS event_id, "  # nosec B608  # names from the models' _meta, values as parameters
            f"e.pgh_label AS label, e.pgh_obj_id::text AS obj_id, e.pgh_context AS context, "
            f"{patient} AS patient_id, {site} AS site_id, {data} AS data, "
            f"LAG({data}) OVER (PARTITION BY e.pgh_obj_id ORDER BY e.pgh_created_at, e.pgh_id)"
            f" AS previous FROM {model._meta.db_table} e WHERE {where}"
        )
        tables.append(
            _Table(
                model=model,
                tracked=tracked,
                sql=sql,
                params=[tracked._meta.label, list(PGH_COLUMNS), list(PGH_COLUMNS), *params],
            )
        )
    return tables


def _union(study, sites, audit_from, audit_to) -> tuple[str, list, str, list]:
    tables = _tables(study, sites)
    union = " UNION ALL ".join(f"({table.sql})" for table in tables)
    params = [param for table in tables for param in table.params]
    where, range_params = [], []
    if audit_from is not None:
        where.append("u.at >= %s")
        range_params.append(audit_from)
    if audit_to is not None:
        where.append("u.at <= %s")
        range_params.append(audit_to)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return union, params, clause, range_params


def event_count(*, study, sites, audit_from=None, audit_to=None) -> int:
    union, params, clause, range_params = _union(study, sites, audit_from, audit_to)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({union}) u{clause}", [*params, *range_params])  # nosec B608  # names from the models' _meta, values as parameters
        return cursor.fetchone()[0]


def _json(text):
    if text is None or not isinstance(text, str):
        return text
    return json.loads(text, parse_float=Decimal)


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


class _Names:
    """What an id column means to a reader: a user's username, a patient's subject code, a
    site's or a study's code; loaded once per table (the study's rows only)."""

    def __init__(self, study) -> None:
        user = get_user_model()
        self.by_model = {
            user: dict(user.objects.values_list("pk", "username")),
            Patient: dict(Patient.objects.filter(study=study).values_list("pk", "subject_code")),
            Site: dict(Site.objects.values_list("pk", "code")),
            Study: dict(Study.objects.values_list("pk", "code")),
        }

    def field_value(self, field, value):
        if value is None or field is None or not field.is_relation:
            return value
        names = self.by_model.get(field.related_model)
        if names is None:
            return value
        return names.get(value, value)


def _fields(tracked) -> dict[str, object]:
    return {field.column: field for field in tracked._meta.concrete_fields}


def audit_rows(
    *, study, sites, unblinded: bool, audit_from=None, audit_to=None, tick=None
) -> Iterator[tuple]:
    """The trail's rows (COLUMNS), oldest event first; `tick()` once per event."""
    union, params, clause, range_params = _union(study, sites, audit_from, audit_to)
    user_table = get_user_model()._meta.db_table
    sql = (
        "SELECT u.at, u.model, u.obj_id, u.label, COALESCE(u.context->>'reason', ''), "  # nosec B608  # names from the models' _meta, values as parameters
        "usr.username, p.subject_code, s.code, u.data, u.previous "
        f"FROM ({union}) u "
        f"LEFT JOIN {Patient._meta.db_table} p ON p.id = u.patient_id "
        f"LEFT JOIN {Site._meta.db_table} s ON s.id = COALESCE(u.site_id, p.site_id) "
        f"LEFT JOIN {user_table} usr ON usr.id = CASE WHEN u.context->>'user' ~ '^[0-9]+$' "
        "THEN (u.context->>'user')::bigint END"
        f"{clause} ORDER BY u.at, u.model, u.event_id"
    )
    names = _Names(study)
    fields_of = {label: _fields(apps.get_model(label)) for label in _labels(study, sites)}
    orders_of = {label: {c: i for i, c in enumerate(f)} for label, f in fields_of.items()}
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, [*params, *range_params])
        while chunk := cursor.fetchmany(CHUNK_SIZE):
            for at, label, obj_id, action, reason, user, subject, site, data, previous in chunk:
                if tick is not None:
                    tick()
                fields = fields_of[label]
                hidden = HIDDEN_FIELDS | HIDDEN_BY_MODEL.get(label, frozenset())
                masked = frozenset() if unblinded else frozenset(BLINDED_FIELDS.get(label, ()))
                data, previous = _json(data) or {}, _json(previous) or {}
                head = (_instant(at), user or "", site or "", subject or "", label, obj_id)
                changes = []
                positions = orders_of[label]
                for column in sorted(data, key=lambda c: (positions.get(c, len(positions)), c)):
                    new = data[column]
                    if column in hidden:
                        continue
                    old = previous.get(column)
                    if action == "update" and previous and old == new:
                        continue
                    if action == "insert" and _empty(new):
                        continue
                    if action == "update" and not previous and _empty(new):
                        continue
                    field = fields.get(column)
                    name = field.name if field is not None else column
                    if action == "delete":
                        old, new = new, None
                        if _empty(old):
                            continue
                    elif action == "insert":
                        old = None
                    old = names.field_value(field, old)
                    new = names.field_value(field, new)
                    if column in masked:
                        old = MASK if not _empty(old) else old
                        new = MASK if not _empty(new) else new
                    changes.append((name, _value(old), _value(new)))
                if not changes:
                    # Every event is in the trail, even one that changed no field shown
                    # (a save with its reason and nothing else).
                    changes.append(("", "", ""))
                for name, old, new in changes:
                    yield (*head, name, old, new, reason, ACTIONS.get(action, action))


def _labels(study, sites) -> list[str]:
    return [table.tracked._meta.label for table in _tables(study, sites)]


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()
