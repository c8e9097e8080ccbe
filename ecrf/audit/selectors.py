"""Reading the audit trail for people: one entry per event, with old → new values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pghistory.models
from django.apps import apps
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

# Fields whose values reveal the allocation: shown only to unblinded readers.
# The seed and the block layout of a list would let anyone regenerate the arms.
BLINDED_FIELDS = {
    "patients.Allocation": {"arm", "block_number", "block_size"},
    "patients.AllocationList": {"seed", "block_sizes"},
}
BLINDED = _("(blinded)")
# Bookkeeping columns that say nothing to a reader (the event has its own time).
HIDDEN_FIELDS = {"id", "last_subject_number", "created_at", "allocated_at", "loaded_at"}

LABELS = {"insert": _("created"), "update": _("changed"), "delete": _("deleted")}


@dataclass(frozen=True)
class Change:
    field: str
    label: str
    old: object
    new: object


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    user: str
    action: str
    model: str
    object_id: str
    changes: tuple[Change, ...]
    reason: str


def _field(model, column: str):
    """The model field behind a column of the event data (None if it was removed since)."""
    for field in model._meta.concrete_fields:
        if field.attname == column:
            return field
    return None


def _related_names(events) -> dict[tuple[type, str], str]:
    """Printable names of the rows that foreign keys in the events point at, one query per model."""
    wanted: dict[type, set[str]] = {}
    for event in events:
        model = apps.get_model(event.pgh_obj_model)
        values = [*(event.pgh_data or {}).items()]
        values += [(k, v) for k, pair in (event.pgh_diff or {}).items() for v in pair]
        for column, value in values:
            field = _field(model, column)
            if field is not None and field.is_relation and value is not None:
                wanted.setdefault(field.related_model, set()).add(str(value))
    names = {}
    for related, ids in wanted.items():
        for pk, obj in related._base_manager.in_bulk(list(ids)).items():
            names[(related, str(pk))] = str(obj)
    return names


def _display(model, column: str, value, names):
    field = _field(model, column)
    if value is None or field is None:
        return value
    if field.is_relation:
        return names.get((field.related_model, str(value)), value)
    if field.choices:
        return dict(field.flatchoices).get(value, value)
    return value


def _entries(events, *, unblinded: bool) -> list[AuditEntry]:
    events = list(events)
    names = _related_names(events)
    user_ids = {e.pgh_context.get("user") for e in events if e.pgh_context}
    users = {
        u.pk: str(u) for u in get_user_model().objects.filter(pk__in=[i for i in user_ids if i])
    }
    entries = []
    for event in events:
        model = apps.get_model(event.pgh_obj_model)
        redacted = set() if unblinded else BLINDED_FIELDS.get(event.pgh_obj_model, set())
        if event.pgh_label == "update":
            pairs = {name: tuple(values) for name, values in (event.pgh_diff or {}).items()}
        elif event.pgh_label == "delete":
            pairs = {name: (value, None) for name, value in event.pgh_data.items()}
        else:  # a creation lists the values given, not the empty ones
            pairs = {
                name: (None, value)
                for name, value in event.pgh_data.items()
                if value not in (None, "")
            }
        changes = []
        for name, (old, new) in sorted(pairs.items()):
            field = _field(model, name)
            if name in HIDDEN_FIELDS:
                continue
            if name in redacted:
                old = BLINDED if old is not None else None
                new = BLINDED if new is not None else None
            changes.append(
                Change(
                    field=field.name if field else name,
                    label=str(field.verbose_name) if field else name,
                    old=_display(model, name, old, names) if name not in redacted else old,
                    new=_display(model, name, new, names) if name not in redacted else new,
                )
            )
        context = event.pgh_context or {}
        entries.append(
            AuditEntry(
                at=event.pgh_created_at,
                user=users.get(context.get("user"), _("system")),
                action=str(LABELS.get(event.pgh_label, event.pgh_label)),
                model=str(model._meta.verbose_name),
                object_id=(event.pgh_data or {}).get("subject_code") or event.pgh_obj_id,
                changes=tuple(changes),
                reason=context.get("reason", ""),
            )
        )
    return entries


def patient_audit_trail(*, patient, unblinded: bool) -> list[AuditEntry]:
    """Every event of the patient and of the rows that point at the patient, oldest first."""
    events = pghistory.models.Events.objects.references(patient).order_by(
        "pgh_created_at", "pgh_id"
    )
    return _entries(events, unblinded=unblinded)
