"""What an export holds, whatever the format: datasets of rows under the data dictionary's
names, read while they are written.

A `Dataset` is one form (one row per patient × visit × form instance), the adverse-event
log (one row per event) or, in an unblinded export only, the allocation (one row per
allocated patient). Its `keys` and `variables` are the columns, each a dictionary
`Variable`; `rows()` yields tuples of raw Python values (None for missing, dates as
dates, codes as their codes) read with a server-side cursor, so that each writer converts
them its own way and memory stays flat. Writers never query the forms themselves.

With a cut-off (`as_of`), the same rows are read as they were at that instant from the
audit trail (snapshot.py): same columns, same order, still streamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.db import models
from django.utils import translation
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from ecrf.crfs.base import CrfBase
from ecrf.crfs.models import FORM_MODELS
from ecrf.exports import snapshot
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
    # The rows now: `model.objects.filter(**where).order_by(*order)` unless given.
    queryset: models.QuerySet = field(repr=False, default=None)
    # More than one row per patient and visit (the culture conditions, the AE log).
    repeating: bool = False
    # The rows' filter (study, sites) and order, in the model's lookups; set by the export.
    where: dict = field(repr=False, default_factory=dict)
    order: tuple[str, ...] = ()
    # The cut-off: the rows as they were at that instant (None: as they are now).
    as_of: datetime | None = None
    # Only rows described by `where` and `order` can be read again from the history.
    _described: bool = field(init=False, repr=False, default=False)
    # Counted once: an export reads one snapshot (services._snapshot), and the progress
    # bar and the ODM writer's sharing out of the datasets both ask.
    _count: int | None = field(init=False, repr=False, default=None)

    def __post_init__(self):
        if self.queryset is None:
            self.queryset = self.model.objects.filter(**self.where).order_by(*self.order)
            self._described = True

    @property
    def columns(self) -> list[Variable]:
        return [*self.keys, *self.variables]

    def _as_of(self, lookups: list[str] | None = None) -> models.QuerySet:
        if not self._described:
            raise TypeError(f"{self.code}: to read it as of a cut-off, give where and order.")
        lookups = lookups or [column.lookup for column in self.columns]
        return snapshot.values_as_of(
            self.model, self.as_of, where=self.where, order=self.order, lookups=lookups
        )

    def count(self) -> int:
        if self._count is None:
            found = self._as_of() if self.as_of is not None else self.queryset
            self._count = found.count()
        return self._count

    def rows_query(self, *extra: str) -> models.QuerySet:
        """The `values_list()` query of `rows()`: now, or as of the cut-off."""
        lookups = [column.lookup for column in self.columns] + list(extra)
        if self.as_of is not None:
            return self._as_of(lookups)
        return self.queryset.values_list(*lookups)

    def rows(self, *extra: str) -> Iterator[tuple]:
        """The rows, keys then variables, as raw Python values, streamed; then the `extra`
        lookups a writer needs beside the columns (the visit's repeat, the row's key)."""
        yield from self.rows_query(*extra).iterator(chunk_size=CHUNK_SIZE)


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
    where = {"patient__study": study}
    if sites:
        where["patient__site__in"] = sites
    label_en, label_fr = _labels(model)
    return Dataset(
        code=form_code,
        label_en=label_en,
        label_fr=label_fr,
        model=model,
        keys=[SUBJECT, SITE, VISIT_CODE, VISIT_DATE, _status_key()],
        variables=list(variables(form_code, visits, initials=initials)),
        where=where,
        order=("patient__subject_code", "visit__sequence", "visit__repeat", "pk"),
        repeating=bool(model.INDEX_KEY),
    )


def ae_dataset(study, sites) -> Dataset:
    where = {"patient__study": study}
    if sites:
        where["patient__site__in"] = sites
    label_en, label_fr = _labels(AdverseEvent)
    return Dataset(
        code=AE_LOG,
        label_en=label_en,
        label_fr=label_fr,
        model=AdverseEvent,
        keys=[SUBJECT, SITE],
        variables=list(variables(AE_LOG, ["per_patient"], model=AdverseEvent)),
        where=where,
        order=("patient__subject_code", "number"),
        repeating=True,
    )


def allocation_dataset(study, sites) -> Dataset:
    where = {"study": study, "patient__isnull": False}
    if sites:
        where["site__in"] = sites
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
        where=where,
        order=("patient__subject_code",),
    )
