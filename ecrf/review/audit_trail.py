"""Reading the audit trail for people: one entry per event, with old → new values.

A monitor reads the page against the source documents, so each entry says what was
written the way the screens say it: the object by the name the protocol gives it
("Visit M3 (Month 3)", "Informed consent · Visit SCR (Pre-inclusion)"), values as the
forms show them (choice labels, Yes/No, dates in the reader's format, instants in the
site's time zone), the keys of a JSON answer that changed ("I3: No → Yes"), and only the
columns a reader needs. The events themselves are untouched: this is a reading of them.

Names come from the last data the events hold for each row (a deleted row keeps its
name) and, for the rows they point at, from one query per model: the page costs the
same whatever the number of events.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import pghistory.models
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ecrf.crfs.base import CrfBase
from ecrf.crfs.models import SafetyLabs
from ecrf.patients.models import FormIndexEntry, Visit
from ecrf.review.sdv import field_label
from ecrf.studies.models import ProtocolVersion
from ecrf.studies.protocol import Protocol

# Fields whose values reveal the allocation: shown only to unblinded readers.
# The seed and the block layout of a list would let anyone regenerate the arms.
BLINDED_FIELDS = {
    "patients.Allocation": {"arm", "block_number", "block_size"},
    "patients.AllocationList": {"seed", "block_sizes"},
}
BLINDED = gettext_lazy("(blinded)")

# Columns only the software needs, never shown: the row's key, the optimistic lock, a
# counter, and the times of the write itself (the entry has its own time, in "When").
# Times that are data (when the site became aware of an event, when a report was
# submitted or acknowledged, when it is due) are not here.
HIDDEN_FIELDS = frozenset(
    {
        "id",
        "version",
        "last_subject_number",
        "created_at",
        "updated_at",
        "entered_at",
        "recorded_at",
        "loaded_at",
        "allocated_at",
        "resolved_at",
        "closed_at",
    }
)
HIDDEN_BY_MODEL = {
    "patients.Visit": frozenset({"sequence"}),  # the order of the protocol, not data
    "patients.Unblinding": frozenset({"at"}),  # the time of the write
    "patients.Allocation": frozenset({"allocation_list_id"}),  # the kit names the slot
    "review.SdvMark": frozenset({"at", "patient_id"}),  # the time of the write; the page's
    "review.QueryMessage": frozenset({"at", "patient_id"}),
    "review.Query": frozenset({"patient_id"}),
    # What a signature covers, for the software to compare: the digest says it.
    "review.Signature": frozenset({"patient_id", "scope"}),
}
# At a creation or a deletion, the columns the object's name already gives.
NAMED_FIELDS = {
    "patients.Patient": frozenset({"subject_code"}),
    "patients.Visit": frozenset({"code", "repeat"}),
    "safety.AdverseEvent": frozenset({"number"}),
}
# Rows whose `field` names a field of the form they are about (`entry_id`): shown by its label.
FORM_FIELD_MODELS = frozenset({"review.Query", "review.SdvMark"})
# Text columns holding an ISO date that may lack its day (an onset "2026-10").
PARTIAL_DATES = {"safety.AdverseEvent": frozenset({"onset_date"})}
PARTIAL_DATE_RE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")

EMPTY = "—"
LABELS = {
    "insert": gettext_lazy("created"),
    "update": gettext_lazy("changed"),
    "delete": gettext_lazy("deleted"),
}

Key = tuple[type[models.Model], str]


# The reasons the services give themselves are stored in English (the audit record is not
# rewritten); readers see them in their own language.
SYSTEM_REASONS = {
    "adverse event recorded": gettext_lazy("adverse event recorded"),
    "allocation list generated": gettext_lazy("allocation list generated"),
    "allocation list imported": gettext_lazy("allocation list imported"),
    "enrolment": gettext_lazy("enrolment"),
    "first entry": gettext_lazy("first entry"),
    "inclusion planned": gettext_lazy("inclusion planned"),
    "patient screened": gettext_lazy("patient screened"),
    "planned inclusion cleared": gettext_lazy("planned inclusion cleared"),
    "randomisation": gettext_lazy("randomisation"),
    "unscheduled visit added": gettext_lazy("unscheduled visit added"),
    "visit dated": gettext_lazy("visit dated"),
    "visit form reopened": gettext_lazy("visit form reopened"),
    "visit forms complete": gettext_lazy("visit forms complete"),
    "source data verified": gettext_lazy("source data verified"),
    "query raised": gettext_lazy("query raised"),
    "electronic signature": gettext_lazy("electronic signature"),
}
SYSTEM_REASON_PREFIXES = {
    "emergency unblinding: ": gettext_lazy("emergency unblinding: %s"),
    "inclusion planned: ": gettext_lazy("inclusion planned: %s"),
    "lab prompt dismissed: ": gettext_lazy("lab prompt dismissed: %s"),
    "planned inclusion cleared: ": gettext_lazy("planned inclusion cleared: %s"),
    "screen failure: ": gettext_lazy("screen failure: %s"),
    "query answered: ": gettext_lazy("query answered: %s"),
    "query closed: ": gettext_lazy("query closed: %s"),
    "query reopened: ": gettext_lazy("query reopened: %s"),
    "automatic query: ": gettext_lazy("automatic query: %s"),
}


def reason_shown(reason: str) -> str:
    """A stored reason as the reader reads it: the services' own reasons translated."""
    if reason in SYSTEM_REASONS:
        return str(SYSTEM_REASONS[reason])
    for prefix, template in SYSTEM_REASON_PREFIXES.items():
        if reason.startswith(prefix):
            return str(template) % reason.removeprefix(prefix)
    return reason


@dataclass(frozen=True)
class Change:
    """One value of an entry, as shown: `old` is None at a creation, `new` at a deletion."""

    field: str
    label: str
    old: str | None
    new: str | None
    hint: str = ""  # what the label stands for, when it is a code (an eligibility criterion)


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    user: str
    action: str
    kind: str  # insert, update or delete
    model: str
    object_id: str
    subject: str  # the object's readable name
    changes: tuple[Change, ...]
    reason: str
    note: str = ""


class AuditTrail(list):
    """The entries, oldest first; `skipped` counts the updates of bookkeeping columns only
    (a version or a save time), without a reason, which the page does not list."""

    skipped: int = 0


@functools.cache
def _columns(model) -> dict[str, models.Field]:
    return {field.attname: field for field in model._meta.concrete_fields}


def _field(model, column: str):
    """The model field behind a column of the event data (None if it was removed since)."""
    return _columns(model).get(column)


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _number(value) -> str:
    """12.5 as the reader writes it (12,5 in French), without a trailing .0."""
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return str(value)
    if number == number.to_integral_value():
        number = number.quantize(Decimal(1))
    return formats.number_format(number)


def _yes_no(value: bool) -> str:
    return _("Yes") if value else _("No")


def _plain(value) -> str:
    """A value with no field to describe it (a key of a JSON column)."""
    if _empty(value):
        return EMPTY
    if isinstance(value, bool):
        return _yes_no(value)
    if isinstance(value, float | Decimal):
        return _number(value)
    if isinstance(value, list | tuple):
        return ", ".join(_plain(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_plain(item)}" for key, item in value.items())
    return str(value)


def _day(value) -> str:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return value
    return formats.date_format(value, "SHORT_DATE_FORMAT")


def _partial_day(value: str) -> str:
    match = PARTIAL_DATE_RE.match(value)
    if match is None:
        return value
    year, month, day = match.groups()
    try:
        if day is None:
            return formats.date_format(date(int(year), int(month), 1), "YEAR_MONTH_FORMAT")
        return formats.date_format(date(int(year), int(month), int(day)), "SHORT_DATE_FORMAT")
    except ValueError:
        return value


def _instant(value, tz) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return formats.date_format(timezone.localtime(value, tz), "SHORT_DATETIME_FORMAT")


class _Rows:
    """What the page knows of the rows the events are about or point at: their last data
    (from the events, or fetched once per model), and their readable names."""

    # Columns a row's name is made of: a form's visit, a visit's protocol version.
    NAME_COLUMNS = ("visit_id", "protocol_version_id")
    # Models whose __str__ reads only their own columns: safe to print, no query.
    PRINTABLE = frozenset(
        {"studies.Study", "studies.Site", "patients.AllocationList", settings.AUTH_USER_MODEL}
    )

    def __init__(self, patient) -> None:
        self.patient = patient
        self.tz = ZoneInfo(patient.site.timezone)
        self.data: dict[Key, dict] = {}
        self.objects: dict[Key, models.Model] = {}
        self.unknown: set[Key] = set()
        self._protocols: dict[str, object] = {}
        self._add(patient)
        for field in patient._meta.concrete_fields:  # what the view loaded with the patient
            if field.is_relation and field.is_cached(patient):
                self._add(getattr(patient, field.name))

    def _add(self, obj) -> None:
        if obj is None:
            return
        key = (obj._meta.model, str(obj.pk))
        self.objects[key] = obj
        self.data[key] = {f.attname: f.value_from_object(obj) for f in obj._meta.concrete_fields}

    def learn(self, model, pk, data: dict) -> None:
        """The row's data as of an event; later events override earlier ones."""
        self.data[(model, str(pk))] = data

    def needs(self, key: Key) -> set[Key]:
        """The rows the name of this row is made of."""
        model, _pk = key
        data = self.data.get(key) or {}
        needed = set()
        for column in self.NAME_COLUMNS:
            value = data.get(column)
            field = _field(model, column) if value is not None else None
            if field is not None and field.is_relation:
                needed.add((field.related_model, str(value)))
        return needed

    def fetch(self, keys: set[Key]) -> None:
        """Load the rows not known yet, then the rows their names need: a query per model."""
        for _round in range(3):  # a name is at most two rows deep (form → visit → protocol)
            missing: dict[type[models.Model], set[str]] = {}
            for model, pk in keys:
                if (model, pk) not in self.data and (model, pk) not in self.unknown:
                    missing.setdefault(model, set()).add(pk)
            if not missing:
                return
            fetched = set()
            for model, ids in missing.items():
                for obj in model._base_manager.filter(pk__in=list(ids)):
                    self._add(obj)
                for pk in ids:
                    key = (model, pk)
                    if key in self.data:
                        fetched.add(key)
                    else:
                        self.unknown.add(key)
            keys = set().union(*(self.needs(key) for key in fetched))

    def protocol(self, version_id):
        """The protocol a row was entered under (None when it cannot be read)."""
        if version_id is None:
            return None
        key = (ProtocolVersion, str(version_id))
        if key[1] not in self._protocols:
            obj = self.objects.get(key)
            data = self.data.get(key)
            if obj is not None:
                protocol = obj.protocol
            elif data is not None and data.get("definition"):
                protocol = Protocol.model_validate(data["definition"])
            else:
                protocol = None
            self._protocols[key[1]] = protocol
        return self._protocols[key[1]]

    # -- names ---------------------------------------------------------------------------

    def name(self, model, pk, *, as_value: bool = False) -> str:
        """The row's readable name; `as_value` for a row shown as a value (a patient by
        their subject code)."""
        key = (model, str(pk))
        data = self.data.get(key)
        label = model._meta.label
        if data is None:
            return f"{capfirst(model._meta.verbose_name)} #{pk}"
        if label in self.PRINTABLE and key in self.objects:
            return str(self.objects[key])
        if label == "patients.Patient":
            code = data.get("subject_code") or pk
            return code if as_value else _("Patient %(code)s") % {"code": code}
        if label == "patients.Visit":
            return self._visit(data)
        if label == "studies.ProtocolVersion":
            study = (data.get("definition") or {}).get("study", {}).get("code", "")
            return f"{study} v{data.get('version')}".strip()
        if issubclass(model, CrfBase):
            return self._form(model, data)
        if label == "safety.AdverseEvent":
            return _("Adverse event %(number)s “%(term)s”") % {
                "number": f"AE-{data.get('number') or 0:03d}",
                "term": data.get("term", ""),
            }
        if label == "patients.Allocation":
            return _("Allocation of kit %(kit)s") % {"kit": data.get("kit_number", "")}
        if label == "patients.FormIndexEntry":  # the form an SDV mark is about
            protocol = self.protocol(self.patient.protocol_version_id)
            code = data.get("form_code", "")
            parts = [protocol.form_label(code) if protocol is not None else code]
            if data.get("visit_id") is not None:
                parts.append(self._visit_name(data["visit_id"]))
            return " · ".join(str(part) for part in parts)
        parts = [capfirst(model._meta.verbose_name)]
        if label == "safety.LabAlert" and data.get("analyte"):
            parts.append(self._lab_label(data["analyte"]))
        if data.get("visit_id") is not None and _field(model, "visit_id") is not None:
            parts.append(self._visit_name(data["visit_id"]))
        return " · ".join(str(part) for part in parts)

    def _visit_name(self, pk) -> str:
        return self.name(Visit, pk)

    def _visit(self, data: dict) -> str:
        code = data.get("code", "")
        repeat = data.get("repeat") or 1
        shown = f"{code} #{repeat}" if repeat > 1 else code
        protocol = self.protocol(data.get("protocol_version_id"))
        try:
            name = protocol.visit(code).name if protocol is not None else None
        except KeyError:
            name = None
        if name is None:
            return _("Visit %(code)s") % {"code": shown}
        return _("Visit %(code)s (%(name)s)") % {"code": shown, "name": name}

    def _form(self, model, data: dict) -> str:
        protocol = self.protocol(data.get("protocol_version_id"))
        if protocol is not None:
            parts = [protocol.form_label(model.FORM_CODE)]
        else:
            parts = [capfirst(model._meta.verbose_name)]
        condition = _field(model, "condition")
        if condition is not None and data.get("condition"):
            parts.append(str(dict(condition.flatchoices).get(data["condition"], data["condition"])))
        if data.get("visit_id") is not None:
            parts.append(self._visit_name(data["visit_id"]))
        return " · ".join(parts)

    @staticmethod
    def _lab_label(analyte: str) -> str:
        field = _field(SafetyLabs, analyte)
        return capfirst(field.verbose_name) if field is not None else analyte

    # -- values --------------------------------------------------------------------------

    def shown(self, model, column: str, value) -> str:
        """A column's value as the form shows it, in the reader's language and formats."""
        field = _field(model, column)
        if value is None and isinstance(field, models.BooleanField) and field.editable:
            return _("Not answered") if field.null else EMPTY
        if _empty(value):
            return EMPTY
        if field is None:
            return _plain(value)
        if field.is_relation:
            return self.name(field.related_model, value, as_value=True)
        if field.choices:
            return str(dict(field.flatchoices).get(value, value))
        if isinstance(field, models.DateTimeField):  # a DateField too: first
            return _instant(value, self.tz)
        if isinstance(field, models.DateField):
            return _day(value)
        if column in PARTIAL_DATES.get(model._meta.label, ()) and isinstance(value, str):
            return _partial_day(value)
        return _plain(value)


def _pairs(event) -> dict[str, tuple[object, object]]:
    """Column → (old, new) of the event: a creation lists the values given, not the empty
    ones; a deletion the last values."""
    data = event.pgh_data or {}
    if event.pgh_label == "update":
        return {name: tuple(values) for name, values in (event.pgh_diff or {}).items()}
    if event.pgh_label == "delete":
        return {name: (value, None) for name, value in data.items() if not _empty(value)}
    return {name: (None, value) for name, value in data.items() if not _empty(value)}


def _answer(value) -> str:
    """A checklist answer in the form's words."""
    return _("Not answered") if value is None else _plain(value)


def _blinded(value) -> str:
    return EMPTY if _empty(value) else str(BLINDED)


def _change(name: str, title, kind: str, old, new, shown) -> Change:
    return Change(
        field=name,
        label=str(title),
        old=None if kind == "insert" else shown(old),
        new=None if kind == "delete" else shown(new),
    )


def _warnings(old, new, kind: str) -> list[Change]:
    """The soft warnings the user confirmed with this save (a reader checks those values):
    the newly confirmed ones, never the bookkeeping of the list itself."""
    if kind == "delete":
        return []

    def messages(value) -> list[str]:
        items = value if isinstance(value, list) else []
        return [str(w.get("message", w)) if isinstance(w, dict) else str(w) for w in items]

    before = set(messages(old))
    return [
        Change(field="confirmed_warnings", label=_("Warning confirmed"), old=None, new=message)
        for message in messages(new)
        if message not in before
    ]


class _Reader:
    """Turns events into entries for one patient's page."""

    def __init__(self, events, *, patient, unblinded: bool) -> None:
        self.patient = patient
        self.unblinded = unblinded
        self.events = events
        self.rows = _Rows(patient)
        user_model = get_user_model()
        for event in events:
            if event.pgh_data is not None and event.pgh_obj_id is not None:
                self.rows.learn(
                    apps.get_model(event.pgh_obj_model), event.pgh_obj_id, event.pgh_data
                )
        # The rows to fetch: the users in "Who", the rows the shown values point at (not
        # the hidden ones), and the rows the objects' names are made of.
        wanted: set[Key] = set()
        for event in events:
            model = apps.get_model(event.pgh_obj_model)
            user = (event.pgh_context or {}).get("user")
            if user is not None:
                wanted.add((user_model, str(user)))
            for column, (old, new) in _pairs(event).items():
                field = _field(model, column)
                if field is None or not field.is_relation:
                    continue
                if self._hidden(model, column, event, new if old is None else old):
                    continue
                wanted |= {(field.related_model, str(v)) for v in (old, new) if v is not None}
            if event.pgh_obj_id is not None:
                wanted |= self.rows.needs((model, str(event.pgh_obj_id)))
        self.rows.fetch(wanted)

    def trail(self) -> AuditTrail:
        trail = AuditTrail()
        for event in self.events:
            entry = self.entry(event)
            if entry is None:
                trail.skipped += 1
            else:
                trail.append(entry)
        return trail

    def _context(self, model, field, event) -> str | None:
        """The value a foreign key would repeat at a creation or a deletion: the page's
        patient, study and site, the protocol version the patient follows, the user in
        "Who", the visit in the object's name."""
        patient = self.patient
        label = model._meta.label
        if field.related_model is get_user_model():
            user = (event.pgh_context or {}).get("user")
            return None if user is None else str(user)
        if field.name == "patient" or field.name == "study":
            return str(patient.pk if field.name == "patient" else patient.study_id)
        if label == "patients.Patient":
            return None  # the patient's own site and protocol version are worth reading
        if field.name == "site":
            return str(patient.site_id)
        if field.name == "protocol_version":
            return str(patient.protocol_version_id)
        if field.name == "visit":
            latest = self.rows.data.get((model, str(event.pgh_obj_id))) or {}
            visit = latest.get("visit_id")
            return None if visit is None else str(visit)
        return None

    def _hidden(self, model, column: str, event, value) -> bool:
        label = model._meta.label
        if column in HIDDEN_FIELDS or column in HIDDEN_BY_MODEL.get(label, ()):
            return True
        if event.pgh_label == "update":  # whatever changed is worth reading
            return False
        if column in NAMED_FIELDS.get(label, ()):
            return True
        field = _field(model, column)
        if field is None or not field.is_relation:
            return False
        context = self._context(model, field, event)
        return context is not None and str(value) == context

    def entry(self, event) -> AuditEntry | None:
        model = apps.get_model(event.pgh_obj_model)
        label = model._meta.label
        kind = event.pgh_label
        redacted = set() if self.unblinded else BLINDED_FIELDS.get(label, set())
        positions = {f.attname: i for i, f in enumerate(model._meta.concrete_fields)}
        pairs = _pairs(event)
        changes: list[Change] = []
        for column in sorted(pairs, key=lambda c: (positions.get(c, len(positions)), c)):
            old, new = pairs[column]
            if self._hidden(model, column, event, new if old is None else old):
                continue
            field = _field(model, column)
            title = capfirst(field.verbose_name) if field is not None else column
            name = field.name if field is not None else column
            if column in redacted:
                changes.append(_change(name, title, kind, old, new, _blinded))
            elif column == "confirmed_warnings":
                changes.extend(_warnings(old, new, kind))
            elif isinstance(old, dict) or isinstance(new, dict):
                changes.extend(self._keyed(event, model, name, title, old, new))
            elif column == "field" and label in FORM_FIELD_MODELS:

                def shown(value, event=event):
                    return self._form_field(event, value)

                changes.append(_change(name, title, kind, old, new, shown))
            else:

                def shown(value, column=column):
                    return self.rows.shown(model, column, value)

                changes.append(_change(name, title, kind, old, new, shown))
        context = event.pgh_context or {}
        reason = context.get("reason", "")
        note = ""
        if kind == "update" and not changes:
            if not reason:
                return None  # a version bump or a save time: nothing to read, nobody's why
            note = _("No change to the data: only the record's bookkeeping (version, save time).")
        user = context.get("user")
        return AuditEntry(
            at=event.pgh_created_at,
            user=_("system") if user is None else self.rows.name(get_user_model(), user),
            action=str(LABELS.get(kind, kind)),
            kind=kind,
            model=str(model._meta.verbose_name),
            object_id=(event.pgh_data or {}).get("subject_code") or event.pgh_obj_id,
            subject=self.rows.name(model, event.pgh_obj_id),
            changes=tuple(changes),
            reason=reason_shown(reason),
            note=note,
        )

    def _form_field(self, event, value) -> str:
        """A query's or an SDV mark's field by its label on the form ("hand (dorsum),
        right", not "hand_r"), from the form the row is about (loaded with its name)."""
        if _empty(value):
            return EMPTY
        entry_id = (event.pgh_data or {}).get("entry_id")
        entry = self.rows.data.get((FormIndexEntry, str(entry_id))) or {}
        try:
            return field_label(entry["form_code"], value)
        except KeyError:  # the form is not known (any more): its code is all there is
            return _plain(value)

    def _keyed(self, event, model, name, title, old, new) -> list[Change]:
        """The keys of a JSON object that changed, each as its own line: "I3: No → Yes"."""
        kind = event.pgh_label
        old = old if isinstance(old, dict) else {}
        new = new if isinstance(new, dict) else {}
        criteria = {}
        if model._meta.label == "crfs.Eligibility" and name == "answers":
            # The checklist: a criterion's id, its text beside, answers in the form's words.
            latest = self.rows.data.get((model, str(event.pgh_obj_id))) or {}
            protocol = self.rows.protocol(
                latest.get("protocol_version_id", self.patient.protocol_version_id)
            )
            criteria = {c.id: c for c in protocol.eligibility} if protocol is not None else {}
        order = {key: i for i, key in enumerate(criteria)}
        keys = sorted({*old, *new}, key=lambda k: (order.get(k, len(order)), str(k)))
        changes = []
        for key in keys:
            before, after = old.get(key), new.get(key)
            if kind == "update" and before == after:
                continue
            if (kind == "insert" and after is None) or (kind == "delete" and before is None):
                continue
            if criteria:
                criterion = criteria.get(key)
                label = str(key)
                hint = (criterion.translation or criterion.text) if criterion else ""
                shown = _answer
            else:
                label, hint, shown = f"{title} · {key}", "", _plain
            changes.append(
                Change(
                    field=f"{name}.{key}",
                    label=label,
                    old=None if kind == "insert" else shown(before),
                    new=None if kind == "delete" else shown(after),
                    hint=hint,
                )
            )
        return changes


def patient_audit_trail(*, patient, unblinded: bool) -> AuditTrail:
    """Every event of the patient and of the patient's rows (visits, forms, adverse
    events, allocation...), oldest first.

    A row of another patient that points at this one (a culture in this patient's serum)
    is that patient's data: it is in that patient's trail, not here.
    """
    events = pghistory.models.Events.objects.references(patient).order_by(
        "pgh_created_at", "pgh_id"
    )
    mine = str(patient.pk)
    events = [
        e
        for e in events
        if (e.pgh_data or {}).get("patient_id") is None or str(e.pgh_data["patient_id"]) == mine
    ]
    return _Reader(events, patient=patient, unblinded=unblinded).trail()
