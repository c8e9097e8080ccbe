"""The data as they were at a past instant (an export's cut-off), read from the audit trail.

Every form, the adverse events, the patients, their visits and the allocation slots are
tracked by django-pghistory with the default trackers (`PGHISTORY_DEFAULT_TRACKERS`):
triggers write into one event table per model a full copy of the row on each insert and
update, and of the old row on each delete, stamped `pgh_created_at` (PostgreSQL's NOW(),
the start of the transaction that wrote it) and numbered `pgh_id` in the order written.
An object's row at T is its latest event stamped at or before T (several writes in one
transaction share a stamp: the highest `pgh_id` wins), unless that event is its delete;
an object whose first event is after T did not exist yet. Being stamped with its start, a
transaction under way at T counts as written before T once it has committed: an export
as of an instant only seconds old may gain the rows of such a transaction if made again.

The keys come from the patient's and the visit's rows as they were at T too: a visit
re-dated after T keeps the date it had then, a patient the site it had then. Each of the
model's relations to a patient or a visit is joined to that object's event as of T.
Sites, studies and the patients named in an answer (a serum donor) are joined as they are
now: a site's or a study's code identifies it and is part of every subject code, and a
subject code is given once, when the patient is screened, and never edited.

A dataset's query (its filter, order and columns, in its model's lookups) is translated
onto the event model, so that the rows stream from the same server-side cursor in the
same order with the same columns as the data of now.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.db.models import FilteredRelation, Q, Subquery
from django.db.models.constants import LOOKUP_SEP

from ecrf.patients.models import Patient, Visit

# pghistory's labels for its default trackers (InsertEvent, UpdateEvent, DeleteEvent).
TRACKED = ("insert", "update", "delete")
DELETE = "delete"
# The related rows that are read as they were at the cut-off (see the module's docstring).
AS_OF_RELATED = (Patient, Visit)
_SUFFIX = "_as_of"


def event_model(model: type[models.Model]) -> type[models.Model]:
    """The model's pghistory event table: every insert, update and delete, whole rows."""
    found = {getattr(model, "pgh_event_models", {}).get(label) for label in TRACKED}
    if len(found) != 1 or None in found:
        # Without its deletes (or its updates) the history cannot say what the table held.
        raise ImproperlyConfigured(
            f"{model._meta.label}: an export as of a cut-off needs its inserts, updates and "
            "deletes tracked in one pghistory event model."
        )
    return found.pop()


def latest_events(model: type[models.Model], as_of: datetime) -> models.QuerySet:
    """The `pgh_id` of each object's latest event at `as_of` (its row then, or its delete)."""
    return (
        event_model(model)
        .objects.filter(pgh_created_at__lte=as_of)
        .order_by("pgh_obj_id", "-pgh_created_at", "-pgh_id")
        .distinct("pgh_obj_id")
        .values("pgh_id")
    )


def rows_as_of(model: type[models.Model], as_of: datetime) -> models.QuerySet:
    """The model's rows as they were at `as_of`: one event per object that existed then,
    with the model's field names (the object's primary key is `pgh_obj_id`)."""
    return (
        event_model(model)
        .objects.filter(pgh_id__in=latest_events(model, as_of))
        .exclude(pgh_label=DELETE)
    )


def _relations(model: type[models.Model]) -> dict[str, type[models.Model]]:
    """The model's relations read as of the cut-off: field name -> patient or visit."""
    return {
        field.name: field.related_model
        for field in model._meta.concrete_fields
        if field.many_to_one and field.related_model in AS_OF_RELATED
    }


def _is_field(model: type[models.Model], name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False  # a lookup (patient__in, patient__isnull), not a join
    return True


def _translate(lookup: str, relations: dict, used: set[str]) -> str:
    """A lookup of the tracked model as the same lookup of its rows as of the cut-off."""
    descending = lookup.startswith("-")
    head, _sep, rest = lookup.removeprefix("-").partition(LOOKUP_SEP)
    if head == "pk":
        head = "pgh_obj_id"
    elif head in relations and rest and _is_field(relations[head], rest.split(LOOKUP_SEP)[0]):
        used.add(head)
        head += _SUFFIX
    translated = LOOKUP_SEP.join(part for part in (head, rest) if part)
    return f"-{translated}" if descending else translated


def _as_of_relation(name: str, related: type[models.Model], as_of: datetime):
    events = event_model(related)._meta.get_field("pgh_obj").related_query_name()
    path = f"{name}{LOOKUP_SEP}{events}"
    condition = Q(**{f"{path}{LOOKUP_SEP}pgh_id__in": Subquery(latest_events(related, as_of))})
    return FilteredRelation(path, condition=condition)


def values_as_of(
    model: type[models.Model],
    as_of: datetime,
    *,
    where: dict,
    order: tuple[str, ...] | list[str],
    lookups: list[str],
) -> models.QuerySet:
    """The rows of `model.objects.filter(**where).order_by(*order).values_list(*lookups)`
    as they were at `as_of`: the same columns in the same order."""
    relations, used = _relations(model), set()
    where = {_translate(name, relations, used): value for name, value in where.items()}
    order = [_translate(name, relations, used) for name in order]
    columns = [_translate(name, relations, used) for name in lookups]
    joined = {
        name + _SUFFIX: _as_of_relation(name, relations[name], as_of) for name in sorted(used)
    }
    return (
        rows_as_of(model, as_of)
        .annotate(**joined)
        .filter(**where)
        .order_by(*order)
        .values_list(*columns)
    )
