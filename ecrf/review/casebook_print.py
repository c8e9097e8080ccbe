"""The printable casebook: what a patient's casebook says, read for one page.

Every visit that took place or was declared missed, with its forms' values under their
labels; the patient's log (the adverse events and the SAE reports); every signature, valid
or voided. The fields shown are those a signature covers (`signatures.signed_fields`): the
printout shows exactly what the investigator signs. A fixed number of queries: the visits,
the form index, one per form table, the signatures.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from django.core.exceptions import FieldDoesNotExist
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from ecrf.patients.models import FormIndexEntry, Patient, Visit
from ecrf.review.models import Signature
from ecrf.review.plan import AE_CODE, SAE_CODE
from ecrf.review.sdv import entry_model
from ecrf.review.signatures import TOOK_PLACE, signed_fields

EMPTY = "—"


@dataclass
class PrintedForm:
    label: str
    status: str
    entry: FormIndexEntry
    values: list[tuple[str, str]] = field(default_factory=list)  # (label, value shown)


@dataclass
class PrintedVisit:
    visit: Visit
    forms: list[PrintedForm] = field(default_factory=list)
    signatures: list[Signature] = field(default_factory=list)


@dataclass
class Printout:
    visits: list[PrintedVisit]
    log: list[PrintedForm]
    signatures: list[Signature]  # the casebook's own


def _shown(instance, name: str) -> str:
    try:
        model_field = instance._meta.get_field(name)
    except FieldDoesNotExist:
        return str(getattr(instance, name, EMPTY))
    value = getattr(instance, name)
    if model_field.choices and value not in (None, ""):
        return str(getattr(instance, f"get_{name}_display")())
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, datetime):
        return date_format(value, "SHORT_DATETIME_FORMAT")
    if isinstance(value, date):
        return date_format(value, "SHORT_DATE_FORMAT")
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def _label(instance, name: str) -> str:
    try:
        return str(instance._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


def casebook_printout(patient: Patient) -> Printout:
    protocol = patient.protocol_version.protocol
    visits = list(
        Visit.objects.filter(TOOK_PLACE, patient_id=patient.pk).order_by("sequence", "repeat")
    )
    entries = list(
        FormIndexEntry.objects.filter(patient_id=patient.pk).order_by("form_code", "object_id")
    )
    ids = defaultdict(list)
    for entry in entries:
        ids[entry.form_code].append(entry.object_id)
    instances = {}
    for code, pks in sorted(ids.items()):
        rows = entry_model(code).objects.filter(pk__in=pks)
        if code == SAE_CODE:
            rows = rows.select_related("adverse_event")
        instances |= {(code, row.pk): row for row in rows}
    order: dict[str, int] = {}
    for spec in protocol.visits:
        for n, form in enumerate(spec.forms):
            order.setdefault(form.form, n)

    def printed(entry: FormIndexEntry) -> PrintedForm:
        instance = instances.get((entry.form_code, entry.object_id))
        if entry.form_code == AE_CODE and instance is not None:
            label = f"AE-{instance.number:03d} · {instance.term}"
        elif entry.form_code == SAE_CODE and instance is not None:
            number = instance.number
            kind = _("initial report") if number == 0 else _("follow-up %d") % number
            label = f"AE-{instance.adverse_event.number:03d} · {_('SAE report')} · {kind}"
        else:
            label = protocol.form_label(entry.form_code)
            if entry.key:
                label = f"{label} · {entry.key}"
        form = PrintedForm(label=label, status=str(entry.get_status_display()), entry=entry)
        if instance is not None:
            form.values = [
                (_label(instance, name), _shown(instance, name))
                for name in signed_fields(entry.form_code)
            ]
        return form

    by_visit = defaultdict(list)
    for entry in sorted(entries, key=lambda e: (order.get(e.form_code, 99), e.form_code, e.pk)):
        by_visit[entry.visit_id].append(entry)
    signatures = list(
        Signature.objects.filter(patient_id=patient.pk)
        .select_related("visit", "voided_by")
        .order_by("signed_at", "pk")
    )
    signed = defaultdict(list)
    for signature in signatures:
        signed[signature.visit_id].append(signature)
    return Printout(
        visits=[
            PrintedVisit(
                visit=visit,
                forms=[printed(e) for e in by_visit[visit.pk]],
                signatures=signed[visit.pk],
            )
            for visit in visits
        ],
        log=[printed(e) for e in by_visit[None]],
        signatures=signed[None],
    )
