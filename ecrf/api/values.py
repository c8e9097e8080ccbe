"""A form's answers from JSON to what `crf_save` takes, each refusal naming the field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import capfirst
from django.utils.translation import gettext as _


def _label(field: models.Field) -> str:
    return capfirst(str(field.verbose_name))


def _number(field: models.Field, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError
    if isinstance(field, models.DecimalField):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise ValueError from None
    if isinstance(field, models.FloatField):
        return float(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError
    return int(value)


def _expected(field: models.Field) -> str:
    if isinstance(field, models.BooleanField):
        return _("true or false")
    if isinstance(field, models.DateTimeField):
        return _("a date and time with its offset, e.g. 2026-12-01T09:30:00+01:00")
    if isinstance(field, models.DateField):
        return _("a date as YYYY-MM-DD")
    if isinstance(field, (models.IntegerField,)):
        return _("a whole number")
    if isinstance(field, (models.DecimalField, models.FloatField)):
        return _("a number")
    return _("text")


def values_from_json(model, data: dict, answers=None) -> dict:
    """The answers as Python values; a name the form does not have is passed on as it is,
    for the save service to refuse with the others. `answers`: the names a user fills in
    (a CRF's answer_fields() by default)."""
    fields = {f.name: f for f in model._meta.concrete_fields}
    answers = set(model.answer_fields() if answers is None else answers)
    values, errors = {}, {}
    for name, value in data.items():
        field = fields.get(name)
        if field is None or name not in answers or value is None:
            values[name] = value
            continue
        try:
            if isinstance(field, models.BooleanField):
                if not isinstance(value, bool):
                    raise ValueError
                values[name] = value
            elif isinstance(field, models.DateTimeField):
                moment = parse_datetime(value) if isinstance(value, str) else None
                if moment is None or timezone.is_naive(moment):
                    raise ValueError
                values[name] = moment
            elif isinstance(field, models.DateField):
                if not isinstance(value, str):
                    raise ValueError
                values[name] = date.fromisoformat(value)
            elif isinstance(field, (models.IntegerField, models.DecimalField, models.FloatField)):
                values[name] = _number(field, value)
            elif isinstance(field, (models.CharField, models.TextField)):
                if not isinstance(value, str):
                    raise ValueError
                values[name] = value
            else:
                values[name] = value
        except (ValueError, TypeError, OverflowError):
            errors[name] = [
                _("%(label)s: give %(expected)s.")
                % {"label": _label(field), "expected": _expected(field)}
            ]
    if errors:
        raise ValidationError(errors)
    return values


def field_metadata(model) -> list[dict]:
    """Each answer of a form: name, label, type, whether it may stay empty, its choices."""
    fields = {f.name: f for f in model._meta.concrete_fields}
    described = []
    for name in model.answer_fields():
        field = fields[name]
        kind = (
            "boolean" if isinstance(field, models.BooleanField)
            else "date-time" if isinstance(field, models.DateTimeField)
            else "date" if isinstance(field, models.DateField)
            else "integer" if isinstance(field, models.IntegerField)
            else "number" if isinstance(field, (models.DecimalField, models.FloatField))
            else "string"
        )  # fmt: skip
        item = {
            "name": name,
            "label": _label(field),
            "type": kind,
            "nullable": bool(field.null or field.blank),
            "required": name in model.REQUIRED_FIELDS,
        }
        if field.choices:
            item["choices"] = [{"value": v, "label": str(lbl)} for v, lbl in field.flatchoices]
        if getattr(field, "max_length", None) and kind == "string":
            item["max_length"] = field.max_length
        described.append(item)
    return described
