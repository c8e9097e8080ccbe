"""Reading the audit trail for people: one entry per event, with old → new values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pghistory.models
from django.apps import apps
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

# Fields whose values reveal the allocation: shown only to unblinded readers.
BLINDED_FIELDS = {"patients.Allocation": {"arm"}}
BLINDED = _("(blinded)")
# Bookkeeping columns that say nothing to a reader.
HIDDEN_FIELDS = {"id", "last_subject_number"}

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


def _field_label(model, name: str) -> str:
    try:
        return str(model._meta.get_field(name).verbose_name)
    except Exception:  # a column no longer on the model keeps its raw name
        return name


def _entries(events, *, unblinded: bool) -> list[AuditEntry]:
    events = list(events)
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
        else:
            pairs = {name: (None, value) for name, value in event.pgh_data.items()}
        changes = tuple(
            Change(
                field=name,
                label=_field_label(model, name.removesuffix("_id")),
                old=BLINDED if name in redacted and old is not None else old,
                new=BLINDED if name in redacted and new is not None else new,
            )
            for name, (old, new) in sorted(pairs.items())
            if name not in HIDDEN_FIELDS
        )
        context = event.pgh_context or {}
        entries.append(
            AuditEntry(
                at=event.pgh_created_at,
                user=users.get(context.get("user"), _("system")),
                action=str(LABELS.get(event.pgh_label, event.pgh_label)),
                model=str(model._meta.verbose_name),
                object_id=event.pgh_obj_id,
                changes=changes,
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
