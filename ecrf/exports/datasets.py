"""What an export holds, whatever the format: datasets of rows under the data dictionary's
names, read while they are written.

A `Dataset` is one form (one row per patient × visit × form instance), the adverse-event
log (one row per event) or, in an unblinded export only, the allocation (one row per
allocated patient). Its `keys` and `variables` are the columns, each a dictionary
`Variable`; `rows()` yields tuples of raw Python values (None for missing, dates as
dates, codes as their codes) read with a server-side cursor, so that each writer converts
them its own way and memory stays flat. Writers never query the forms themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import models
from django.utils import translation
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from ecrf.crfs.base import CrfBase
from ecrf.crfs.models import FORM_MODELS
from ecrf.exports.dictionary import Variable, variable_of, variables
from ecrf.patients.models import Allocation
from ecrf.safety.models import AdverseEvent

CHUNK_SIZE = 2000

# The adverse-event log, under its protocol form code.
AE_LOG = AdverseEvent.FORM_CODE
ALLOCATION = "allocation"


def _key(name, label, type_="text", lookup=None, field_=None) -> Variable:
    labels = {}
    for language in ("en", "fr"):
        with translation.override(language):
            labels[language] = str(capfirst(label))
    return Variable(
        form="",
        name=name,
        label_en=labels["en"],
        label_fr=labels["fr"],
        type=type_,
        unit="",
        values_en="",
        values_fr="",
        visits="",
        lookup=lookup or name,
        field=field_,
    )


SUBJECT = _key("subject_code", _("subject code"), lookup="patient__subject_code")
SITE = _key("site", _("site"), lookup="patient__site__code")
VISIT_CODE = _key("visit_code", _("visit code"), lookup="visit__code")
VISIT_DATE = _key("visit_date", _("visit date"), "date", lookup="visit__visit_date")


def _status_key() -> Variable:
    status = CrfBase._meta.get_field("status")
    return variable_of("", status, [], name="form_status")


@dataclass
class Dataset:
    """One file's worth of rows (a form, the AE log, the allocation)."""

    code: str
    label_en: str
    label_fr: str
    model: type[models.Model]
    keys: list[Variable]
    variables: list[Variable]
    # The rows' filter (study, sites) and order; set by the export.
    queryset: models.QuerySet = field(repr=False, default=None)
    # More than one row per patient and visit (the culture conditions, the AE log).
    repeating: bool = False

    @property
    def columns(self) -> list[Variable]:
        return [*self.keys, *self.variables]

    def count(self) -> int:
        return self.queryset.count()

    def rows(self, *extra: str) -> Iterator[tuple]:
        """The rows, keys then variables, as raw Python values, streamed; then the `extra`
        lookups a writer needs beside the columns (the visit's repeat, the row's key)."""
        lookups = [column.lookup for column in self.columns] + list(extra)
        yield from self.queryset.values_list(*lookups).iterator(chunk_size=CHUNK_SIZE)


def _labels(model) -> tuple[str, str]:
    labels = {}
    for language in ("en", "fr"):
        with translation.override(language):
            labels[language] = str(capfirst(model._meta.verbose_name))
    return labels["en"], labels["fr"]


def form_dataset(
    form_code: str, visits: list[str], study, sites, *, initials: bool = False
) -> Dataset:
    model = FORM_MODELS[form_code]
    rows = model.objects.filter(patient__study=study)
    if sites:
        rows = rows.filter(patient__site__in=sites)
    label_en, label_fr = _labels(model)
    return Dataset(
        code=form_code,
        label_en=label_en,
        label_fr=label_fr,
        model=model,
        keys=[SUBJECT, SITE, VISIT_CODE, VISIT_DATE, _status_key()],
        variables=list(variables(form_code, visits, initials=initials)),
        queryset=rows.order_by("patient__subject_code", "visit__sequence", "visit__repeat", "pk"),
        repeating=bool(model.INDEX_KEY),
    )


def ae_dataset(study, sites) -> Dataset:
    rows = AdverseEvent.objects.filter(patient__study=study)
    if sites:
        rows = rows.filter(patient__site__in=sites)
    label_en, label_fr = _labels(AdverseEvent)
    return Dataset(
        code=AE_LOG,
        label_en=label_en,
        label_fr=label_fr,
        model=AdverseEvent,
        keys=[SUBJECT, SITE],
        variables=list(variables(AE_LOG, ["per_patient"], model=AdverseEvent)),
        queryset=rows.order_by("patient__subject_code", "number"),
        repeating=True,
    )


def allocation_dataset(study, sites) -> Dataset:
    rows = Allocation.objects.filter(study=study, patient__isnull=False)
    if sites:
        rows = rows.filter(site__in=sites)
    label_en, label_fr = _labels(Allocation)
    return Dataset(
        code=ALLOCATION,
        label_en=label_en,
        label_fr=label_fr,
        model=Allocation,
        keys=[
            SUBJECT,
            _key("site", _("site"), lookup="site__code"),
        ],
        variables=[
            variable_of(ALLOCATION, Allocation._meta.get_field("kit_number"), []),
            variable_of(ALLOCATION, Allocation._meta.get_field("arm"), []),
        ],
        queryset=rows.order_by("patient__subject_code"),
    )
