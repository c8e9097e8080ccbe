"""The data dictionary of a study's forms, read from the CRF models and the protocol.

A form's columns are its model's fields under their data dictionary names
(``crf-spec.md``): the answers, then the derived values, never the bookkeeping of
`CrfBase` (who entered it, its version). The optional `initials` are a near-identifier and
are left out. Each variable has its labels in English and in French, its type, its unit
when the name's suffix gives one, its allowed values with their labels, and the visits of
the protocol(s) where the form is collected.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import models
from django.utils import translation
from django.utils.text import capfirst

from ecrf.crfs.base import CrfBase
from ecrf.crfs.models import FORM_MODELS
from ecrf.patients.models import Patient
from ecrf.safety.models import AdverseEvent

# Never exported unless asked for: near-identifiers (export_run(initials=True)).
LEFT_OUT = frozenset({"initials"})
_BOOKKEEPING = frozenset(f.name for f in CrfBase._meta.get_fields()) | {
    "id",
    "created_at",
    "created_by",
}

# The unit a field name's suffix states (crf-spec.md names carry their unit).
UNIT_SUFFIXES = (
    ("_pg_ml", "pg/mL"),
    ("_pct", "%"),
    ("_kg", "kg"),
    ("_cm", "cm"),
    ("_mm", "mm"),
    ("_mmhg", "mmHg"),
    ("_days", "days"),
)

# The fixed columns before a form's items.
KEY_COLUMNS = ("subject_code", "site", "visit_code", "visit_date", "form_status")


@dataclass(frozen=True)
class Variable:
    form: str
    name: str
    label_en: str
    label_fr: str
    type: str
    unit: str
    values_en: str
    values_fr: str
    visits: str
    # What values_list() reads for it (a patient reference is read as its subject code).
    lookup: str
    # The model field (data type, length, range validators, choices); None for a key
    # column that is not one.
    field: models.Field | None = dataclass_field(default=None, compare=False, repr=False)

    @property
    def codes(self) -> list[tuple[object, str, str]]:
        """The allowed values as (code, English label, French label): choices, or 1/0 for
        a yes/no; empty for a free value."""
        if self.field is None:
            return []
        if self.field.choices:
            found = []
            for value, _label in self.field.flatchoices:
                labels = []
                for language in ("en", "fr"):
                    with translation.override(language):
                        labels.append(str(dict(self.field.flatchoices)[value]))
                found.append((value, *labels))
            return found
        if isinstance(self.field, models.BooleanField):
            with translation.override("en"):
                yes_en, no_en = translation.gettext("Yes"), translation.gettext("No")
            with translation.override("fr"):
                yes_fr, no_fr = translation.gettext("Yes"), translation.gettext("No")
            return [(1, yes_en, yes_fr), (0, no_en, no_fr)]
        return []


def _type(field: models.Field) -> str:
    if field.choices:
        return "coded"
    if isinstance(field, models.BooleanField):
        return "boolean"
    if isinstance(field, (models.IntegerField, models.AutoField)):
        return "integer"
    if isinstance(field, models.DecimalField):
        return "decimal"
    if isinstance(field, models.FloatField):
        return "float"
    if isinstance(field, models.DateTimeField):
        return "datetime"
    if isinstance(field, models.DateField):
        return "date"
    return "text"


def _unit(name: str) -> str:
    return next((unit for suffix, unit in UNIT_SUFFIXES if name.endswith(suffix)), "")


def _values(field: models.Field) -> str:
    if field.choices:
        return " | ".join(f"{value}={label}" for value, label in field.choices)
    if isinstance(field, models.BooleanField):
        return f"1={translation.gettext('Yes')} | 0={translation.gettext('No')}"
    return ""


def export_fields(model: type[CrfBase], *, initials: bool = False) -> list[models.Field]:
    """The model's exported fields in their order: answers and derived values (the
    initials only when asked for)."""
    left_out = LEFT_OUT - {"initials"} if initials else LEFT_OUT
    return [
        field
        for field in model._meta.concrete_fields
        if field.name not in _BOOKKEEPING and field.name not in left_out
    ]


def lookup_of(field: models.Field) -> str:
    if field.is_relation and field.related_model is Patient:
        return f"{field.name}__subject_code"
    return field.attname


def visits_by_form(protocols: Iterable) -> dict[str, list[str]]:
    """Form code -> the visit codes that collect it, over the protocol versions given
    (a per-patient log: "per_patient")."""
    found: dict[str, list[str]] = {}
    for protocol in protocols:
        for visit in protocol.visits:
            for code in visit.form_codes:
                codes = found.setdefault(code, [])
                if visit.code not in codes:
                    codes.append(visit.code)
        for form in protocol.per_patient_forms():
            found.setdefault(form.code, ["per_patient"])
    return found


def exportable_forms(protocols: Iterable, *, study=None) -> list[str]:
    """The study's form codes that have a CRF model, in protocol order, then the
    adverse-event log (not a CRF model) when a protocol lists it or the study has events."""
    codes: list[str] = []
    for protocol in protocols:
        for form in protocol.forms:
            if form.code in FORM_MODELS and form.code not in codes:
                codes.append(form.code)
    listed = any(form.code == AdverseEvent.FORM_CODE for p in protocols for form in p.forms)
    recorded = study is not None and AdverseEvent.objects.filter(patient__study=study).exists()
    if listed or recorded:
        codes.append(AdverseEvent.FORM_CODE)
    return codes


def variable_of(
    form_code: str, field: models.Field, visits: list[str], *, name: str | None = None
) -> Variable:
    """The dictionary row of one model field."""
    labels, values = {}, {}
    for language in ("en", "fr"):
        with translation.override(language):
            labels[language] = str(capfirst(field.verbose_name))
            values[language] = _values(field)
    return Variable(
        form=form_code,
        name=name or field.name,
        label_en=labels["en"],
        label_fr=labels["fr"],
        type=_type(field),
        unit=_unit(field.name),
        values_en=values["en"],
        values_fr=values["fr"],
        visits=" ".join(visits),
        lookup=field.attname if name else lookup_of(field),
        field=field,
    )


def variables(
    form_code: str, visits: list[str], *, model=None, initials: bool = False
) -> Iterator[Variable]:
    """The dictionary rows of one form (or of `model`, for the logs that are not forms)."""
    for field in export_fields(model or FORM_MODELS[form_code], initials=initials):
        yield variable_of(form_code, field, visits)


DICTIONARY_COLUMNS = (
    "form",
    "variable",
    "label_en",
    "label_fr",
    "type",
    "unit",
    "allowed_values_en",
    "allowed_values_fr",
    "visits",
)


def dictionary_row(variable: Variable) -> list[str]:
    return [
        variable.form,
        variable.name,
        variable.label_en,
        variable.label_fr,
        variable.type,
        variable.unit,
        variable.values_en,
        variable.values_fr,
        variable.visits,
    ]


def as_text(value, *, yes: str, no: str) -> str:
    """A present value as every text format writes it: yes/no as `yes` or `no`, an instant
    in UTC and a date in ISO 8601, a numeric in fixed point, a JSON answer as JSON."""
    if isinstance(value, bool):
        return yes if value else no
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)
