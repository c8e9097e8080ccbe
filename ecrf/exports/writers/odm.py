"""`odm` and `odm-audit`: CDISC ODM 1.3.2, written as the rows are read.

`odm` (`odm/<STUDY>_snapshot.xml`, FileType Snapshot): the metadata and administrative
data (odm_metadata.py), then `ClinicalData` subject by subject. The datasets are per form
while ODM nests subject → study event → form → item group, so the datasets' streams
(each ordered by subject, visit, repeat) are merged by subject with heapq.merge: one row
per dataset in memory, one subject's element at a time. An item whose value changed after
the form's first save carries an `AuditRecord` of its last change (read from the form's
pghistory events, streamed in the same order as the rows); a missing value has no
ItemData, unless it was removed by a change (then IsNull, with the change's record). The
valid (not voided) visit and casebook signatures sit on StudyEventData and SubjectData.

`odm-audit` (`odm-audit/<STUDY>_audit.xml`, FileType Transactional): every event of the
exported forms' pghistory trails, oldest first (within `request.audit_from`..`audit_to`),
as ItemData with TransactionType Insert, Update or Remove and an AuditRecord each, in
SubjectData/StudyEventData/FormData/ItemGroupData of TransactionType Context. The
allocation (unblinded exports only) is in the snapshot as a per-patient form, and left out
of the audit file: its trail is the randomisation's, not form data.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter

from django.contrib.auth import get_user_model
from django.db.models import F, Window
from django.db.models.functions import Lag
from django.utils import timezone
from lxml import etree

from ecrf.exports.datasets import ALLOCATION, Dataset
from ecrf.exports.odm_metadata import (
    FORM_STATUS_OID,
    NS,
    NSMAP,
    SIGNATURE_DEFS,
    SYSTEM_USER,
    VISIT_DATE_OID,
    admin_element,
    element,
    event_oid,
    form_oid,
    group_oid,
    instant,
    item_oid,
    location_oid,
    mdv_oid,
    odm_value,
    per_visit,
    repeat_field,
    study_element,
    study_oid,
    tag,
    user_oid,
)
from ecrf.exports.sql_text import (
    attribute,
    chunks_ahead,
    reader_connections,
    readers_wanted,
    rendered_query,
    text,
    value_sql,
)
from ecrf.exports.writers import Writer, rows_total
from ecrf.review.models import Signature
from ecrf.studies.models import Site

# The per-patient logs sort after a subject's visits.
LAST = 1 << 30
# Rows fetched at a time per dataset: every dataset's stream is open at once (merged by
# subject), each with a chunk being written and one fetched ahead, of rendered ItemData
# of a kilobyte or two a row; 500 keeps them all under 50 MB.
ROWS_AHEAD = 500


@dataclass(frozen=True)
class Item:
    """One ItemData of a dataset's group: its OID, where its value is in the row, and the
    column of the form's event table that records its changes (None: not the form's)."""

    oid: str
    index: int
    column: str | None
    lookup: str | None


def _items(dataset: Dataset) -> list[Item]:
    keys = {key.name: i for i, key in enumerate(dataset.keys)}
    items = []
    if per_visit(dataset):
        items.append(Item(VISIT_DATE_OID, keys["visit_date"], None, None))
        items.append(Item(FORM_STATUS_OID, keys["form_status"], "status", "status"))
    offset = len(dataset.keys)
    for i, variable in enumerate(dataset.variables):
        column = variable.field.attname if variable.field is not None else None
        items.append(Item(item_oid(dataset, variable), offset + i, column, variable.lookup))
    return items


def _repeat_index(dataset: Dataset) -> int | None:
    name = repeat_field(dataset)
    for i, variable in enumerate(dataset.variables):
        if variable.name == name:
            return len(dataset.keys) + i
    return None


def _event_model(dataset: Dataset):
    return getattr(dataset.model, "pgh_event_model", None)


def _context_user(context) -> int | None:
    return (context or {}).get("user")


class _Users:
    """The people of the audit records and signatures, read before the clinical data (the
    AdminData comes first), by their account id."""

    def __init__(self, ids) -> None:
        ids = set(ids)
        self.system = None in ids
        found = get_user_model().objects.filter(pk__in=[pk for pk in ids if pk is not None])
        self.by_id = {user.pk: user for user in found.order_by("username")}
        # A context naming an account that no longer exists: the system's, rather than a
        # reference to a User the file does not define.
        self.system |= any(pk is not None and pk not in self.by_id for pk in ids)

    def listed(self) -> list:
        return [*self.by_id.values(), *([None] if self.system else [])]

    def oid(self, pk) -> str:
        user = self.by_id.get(pk)
        return user_oid(user.get_username()) if user is not None else SYSTEM_USER


def _audit_record(users: _Users, site: str, at, context) -> etree._Element:
    record = element(
        "AuditRecord",
        None,
        element("UserRef", {"UserOID": users.oid(_context_user(context))}),
        element("LocationRef", {"LocationOID": location_oid(site)}),
        element("DateTimeStamp", text=instant(at)),
    )
    reason = (context or {}).get("reason")
    if reason:
        record.append(element("ReasonForChange", text=reason))
    return record


def _sites(request) -> list:
    if request.sites:
        return request.sites
    return list(Site.objects.filter(study_sites__study=request.study).order_by("code"))


def _root_attributes(request, file_type: str, name: str) -> dict:
    from ecrf.exports.services import software_version  # the service imports the writers

    created = timezone.now()
    attrib = {
        "FileType": file_type,
        "FileOID": f"{request.study.code}.{name}.{created.strftime('%Y%m%dT%H%M%S%fZ')}",
        "CreationDateTime": instant(created),
        "ODMVersion": "1.3.2",
        "Originator": "eCRF",
        "SourceSystem": "eCRF",
        "SourceSystemVersion": software_version(),
        "Description": f"{request.study.code} {request.blinding}",
    }
    if file_type == "Snapshot":
        attrib["AsOfDateTime"] = instant(request.cut_off)
    if len(request.sites) == 1:
        attrib["Granularity"] = "SingleSite"
    elif not request.sites and not request.forms_asked:
        attrib["Granularity"] = "All"
    return attrib


# -- the snapshot ----------------------------------------------------------------------------


def _updates(events, dataset: Dataset):
    """The update events of the dataset's rows, up to the export's cut-off."""
    found = events.objects.filter(pgh_label="update", pgh_obj__in=dataset.queryset.values("pk"))
    if dataset.as_of is not None:
        found = found.filter(pgh_created_at__lte=dataset.as_of)
    return found


def _changes(dataset: Dataset, items: list[Item]) -> Iterator[tuple[int, dict]]:
    """(row id, {item index: (when, context)}) of the rows whose items changed after their
    first save, the last change of each item (up to the cut-off), in the dataset's row
    order."""
    events = _event_model(dataset)
    columns = [item.column for item in items if item.column is not None]
    if events is None or not columns:
        return iter(())
    changed = _updates(events, dataset)
    order = [f"pgh_obj__{name}" for name in dataset.queryset.query.order_by]
    trail = events.objects.filter(pgh_obj__in=changed.values("pgh_obj_id"))
    if dataset.as_of is not None:
        trail = trail.filter(pgh_created_at__lte=dataset.as_of)
    stream = (
        trail.order_by(*order, "pgh_obj_id", "pgh_id")
        .values_list("pgh_obj_id", "pgh_label", "pgh_created_at", "pgh_context", *columns)
        .iterator(chunk_size=2000)
    )
    positions = [i for i, item in enumerate(items) if item.column is not None]

    def grouped():
        for obj, rows in itertools.groupby(stream, key=lambda row: row[0]):
            found, before = {}, None
            for _obj, label, at, context, *values in rows:
                if before is not None and label == "update":
                    for position, old, new in zip(positions, before, values, strict=True):
                        if old != new:
                            found[position] = (at, context)
                before = values
            if found:
                yield obj, found

    return grouped()


def _change_users(datasets: list[Dataset]) -> set:
    ids = set()
    for dataset in datasets:
        events = _event_model(dataset)
        if events is None:
            continue
        ids |= set(_updates(events, dataset).values_list("pgh_context__user", flat=True).distinct())
    return ids


def _signatures(request):
    """The signatures that held at the cut-off (signed by then, not voided by then)."""
    if request.as_of is None:
        found = Signature.objects.valid()
    else:
        found = Signature.objects.filter(signed_at__lte=request.as_of).exclude(
            voided_at__lte=request.as_of
        )
    found = found.filter(patient__study=request.study)
    if request.sites:
        found = found.filter(patient__site__in=request.sites)
    return found


# A row of a dataset's stream, as its query returns it: the merge's key (subject, visit
# order, repeat, dataset), then the site, the visit code, the body (a non-repeating
# dataset's whole FormData, a repeating one's ItemData), the repeat key, the changes (None
# until the changes of the row's items are put in) and the row's id.
SUBJECT, ORDER, REPEAT, DATASET, SITE, VISIT, BODY, REPEAT_KEY, CHANGES, PK = range(10)


def _form_wrap(dataset: Dataset) -> tuple[str, str]:
    """The text around a non-repeating dataset's ItemData: its one FormData and group."""
    if dataset.repeating:
        return ("", "")
    return (
        f'<FormData FormOID="{attribute(form_oid(dataset))}">'
        f'<ItemGroupData ItemGroupOID="{attribute(group_oid(dataset))}">',
        "</ItemGroupData></FormData>",
    )


def _keyed_rows(index: int, dataset: Dataset, items: list[Item], on=None) -> Iterator[tuple]:
    """The dataset's rows (laid out as SUBJECT … PK), rendered by its query (sql_text.py)
    on the connection `on` (None: the export's own), with the changes of the items put
    in. Most rows pass through untouched, a chunk at a time."""
    width = len(dataset.columns)
    if per_visit(dataset):
        extra = ("pk", "visit__sequence", "visit__repeat")
        head = ["r.c0", f"r.c{width + 1}", f"r.c{width + 2}", str(index), "r.c1", "r.c2"]
    else:
        extra = ("pk",)
        head = ["r.c0", str(LAST), "0", str(index), "r.c1", "NULL"]
    repeat = _repeat_index(dataset) if dataset.repeating else None
    if repeat is not None:
        column = f"r.c{repeat}"
        repeat_sql = value_sql(column, dataset.columns[repeat]) or column
    else:
        repeat_sql = "NULL"
    tail = [repeat_sql, "NULL", f"r.c{width}"]
    query = rendered_query(dataset, items, extra, head, tail, _form_wrap(dataset))
    body = len(head)
    changes = _changes(dataset, items)
    pending = next(changes, None)
    for chunk in chunks_ahead(query.sql, query.params, ROWS_AHEAD, on):
        if not query.whole:
            chunk = [
                (*row[:BODY], query.items(row), *row[body + len(query.segments) :]) for row in chunk
            ]
        if pending is not None:
            # The changes come in the rows' order: those of this chunk's rows go in.
            at = {row[PK]: i for i, row in enumerate(chunk)}
            while pending is not None and pending[0] in at:
                i = at[pending[0]]
                chunk[i] = (*chunk[i][:CHANGES], pending[1], chunk[i][PK])
                pending = next(changes, None)
        yield from chunk


class _Snapshot:
    def __init__(self, context) -> None:
        self.context = context
        self.request = context.request
        self.datasets = context.datasets
        self.items = [_items(dataset) for dataset in self.datasets]
        protocols = self.request.protocols
        self.repeatable = {v.code for p in protocols for v in p.visits if v.repeatable}
        signatures = _signatures(self.request)
        self.meanings = sorted(set(signatures.values_list("meaning", flat=True)))
        ids = _change_users(self.datasets) | set(signatures.values_list("signer_id", flat=True))
        self.users = _Users(ids)
        self.rows = 0

    def signature_meanings(self) -> list[tuple[str, str]]:
        labels = dict(Signature.Meaning.choices)
        return [(meaning, str(labels[meaning])) for meaning in self.meanings]

    def _signature_stream(self) -> Iterator[tuple]:
        return (
            _signatures(self.request)
            .order_by("patient__subject_code", "signed_at", "pk")
            .values_list(
                "patient__subject_code",
                "visit__sequence",
                "visit__repeat",
                "signer_id",
                "signed_at",
                "meaning",
                "patient__site__code",
            )
            .iterator(chunk_size=2000)
        )

    def _signature(self, row) -> str:
        _subject, _sequence, _repeat, signer, at, meaning, site = row
        return (
            f'<Signature><UserRef UserOID="{attribute(self.users.oid(signer))}"/>'
            f'<LocationRef LocationOID="{attribute(location_oid(site))}"/>'
            f'<SignatureRef SignatureOID="{SIGNATURE_DEFS[meaning]}"/>'
            f"<DateTimeStamp>{instant(at)}</DateTimeStamp></Signature>"
        )

    def _audit_record(self, site: str, at, context) -> str:
        reason = (context or {}).get("reason")
        return (
            f'<AuditRecord><UserRef UserOID="{attribute(self.users.oid(_context_user(context)))}"/>'
            f'<LocationRef LocationOID="{attribute(location_oid(site))}"/>'
            f"<DateTimeStamp>{instant(at)}</DateTimeStamp>"
            + (f"<ReasonForChange>{text(reason)}</ReasonForChange>" if reason else "")
            + "</AuditRecord>"
        )

    def _lanes(self, readers: list) -> list:
        """The connection of each dataset (None: the export's own): the datasets dealt out,
        biggest first, to the connection with the least to render so far (rows × items)."""
        lanes = [None, *readers]
        if not readers:
            return [None] * len(self.datasets)
        load = dict.fromkeys(range(len(lanes)), 0)
        chosen = {}
        weights = {
            i: dataset.count() * max(1, len(self.items[i]))
            for i, dataset in enumerate(self.datasets)
        }
        for i in sorted(weights, key=weights.get, reverse=True):
            lane = min(load, key=load.get)
            chosen[i] = lanes[lane]
            load[lane] += weights[i]
        return [chosen[i] for i in range(len(self.datasets))]

    def subjects(self, readers: list = ()) -> Iterator[str]:
        lanes = self._lanes(list(readers))
        streams = [
            _keyed_rows(i, dataset, self.items[i], lanes[i])
            for i, dataset in enumerate(self.datasets)
        ]
        # The first four of a row tell the streams apart: no two rows' bodies are compared.
        merged = heapq.merge(*streams)
        signatures = self._signature_stream()
        waiting = next(signatures, None)
        previous = None
        for subject, rows in itertools.groupby(merged, key=itemgetter(SUBJECT)):
            if previous is not None and subject <= previous:
                # heapq.merge needs each stream in Python's order of the subject codes.
                raise RuntimeError(f"Rows not in subject order at {subject}")
            previous = subject
            # The subject's valid signatures (the latest of each visit, of the casebook).
            while waiting is not None and waiting[0] < subject:
                waiting = next(signatures, None)
            signed = {}
            while waiting is not None and waiting[0] == subject:
                signed[(waiting[1], waiting[2])] = waiting
                waiting = next(signatures, None)
            yield self.subject(subject, rows, signed)

    def subject(self, subject: str, rows, signed: dict) -> str:
        site = None
        parts = [f'<SubjectData SubjectKey="{attribute(subject)}">', "", ""]
        written = 0
        last = None
        for key, group in itertools.groupby(rows, key=itemgetter(ORDER, REPEAT)):
            if last is not None and key <= last:
                raise RuntimeError(f"{subject}: visits not in order")
            last = key
            group = list(group)
            order, repeat = key
            site = group[0][SITE]
            visit = group[0][VISIT] if order != LAST else None
            parts.append(f'<StudyEventData StudyEventOID="{attribute(event_oid(visit))}"')
            if visit is not None and (visit in self.repeatable or repeat > 1):
                parts.append(f' StudyEventRepeatKey="{repeat}"')
            parts.append(">")
            if visit is not None and key in signed:
                parts.append(self._signature(signed[key]))
            i, end = 0, len(group)
            while i < end:
                row = group[i]
                index = row[DATASET]
                if not self.datasets[index].repeating:
                    body = row[BODY]
                    if row[CHANGES]:
                        body = self._changed(index, body, row[SITE], row[CHANGES])
                    parts.append(body)
                    i += 1
                    continue
                j = i + 1
                while j < end and group[j][DATASET] == index:
                    j += 1
                parts.append(self.form(index, group[i:j]))
                i = j
            parts.append("</StudyEventData>")
            written += len(group)
        casebook = signed.get((None, None))
        if casebook is not None:
            parts[1] = self._signature(casebook)
        parts[2] = f'<SiteRef LocationOID="{attribute(location_oid(site))}"/>'
        parts.append("</SubjectData>")
        self.rows += written
        self.context.tick(written)
        return "".join(parts)

    def form(self, index: int, rows: list[tuple]) -> str:
        """A repeating dataset's rows of one visit: one FormData, a group per row."""
        dataset = self.datasets[index]
        opening = f'<ItemGroupData ItemGroupOID="{group_oid(dataset)}"'
        parts = [f'<FormData FormOID="{form_oid(dataset)}">']
        for number, row in enumerate(rows, start=1):
            items = row[BODY]
            if row[CHANGES]:
                items = self._changed(index, items, row[SITE], row[CHANGES])
            repeat_key = row[REPEAT_KEY]
            key = attribute(repeat_key) if repeat_key else str(number)
            parts.append(f'{opening} ItemGroupRepeatKey="{key}">{items}</ItemGroupData>')
        parts.append("</FormData>")
        return "".join(parts)

    def _changed(self, index: int, items: str, site: str, changes: dict) -> str:
        """The row's ItemData with an AuditRecord on each changed item, and an IsNull
        ItemData (with its record) for a value a change removed, in the items' order
        (before the closing tags of a body that has them)."""
        oids = [item.oid for item in self.items[index]]
        closing = items.rfind("</ItemGroupData>")
        for position in sorted(changes):
            record = self._audit_record(site, *changes[position])
            start = items.find(f'<ItemData ItemOID="{oids[position]}" ')
            if start >= 0:
                # A Value is escaped: the first "/>" after the start closes this ItemData.
                end = items.index("/>", start)
                items = f"{items[:end]}>{record}</ItemData>{items[end + 2 :]}"
                closing = items.rfind("</ItemGroupData>")
                continue
            later = (items.find(f'<ItemData ItemOID="{oid}" ') for oid in oids[position + 1 :])
            end = closing if closing >= 0 else len(items)
            at = next((found for found in later if found >= 0), end)
            removed = f'<ItemData ItemOID="{oids[position]}" IsNull="Yes">{record}</ItemData>'
            items = f"{items[:at]}{removed}{items[at:]}"
            closing = items.rfind("</ItemGroupData>")
        return items


def _opening_tag(name: str, attributes: dict, nsmap: dict | None = None) -> str:
    """`<name …>` as lxml writes the element's start, namespaces included."""
    empty = etree.tostring(etree.Element(tag(name), attributes, nsmap=nsmap), encoding="unicode")
    return empty.removesuffix("/>") + ">"


def write_snapshot(context) -> list[dict]:
    request = context.request
    path = context.folder("odm") / f"{request.study.code}_snapshot.xml"
    snapshot = _Snapshot(context)
    versions = list(request.study.protocol_versions.order_by("loaded_at"))
    clinical = {
        "StudyOID": study_oid(request.study),
        "MetaDataVersionOID": mdv_oid(versions[-1].version),
    }
    admin = admin_element(
        request, snapshot.users.listed(), _sites(request), snapshot.signature_meanings()
    )
    with (
        path.open("w", encoding="utf-8", newline="", buffering=1 << 20) as file,
        reader_connections(readers_wanted() - 1) as readers,
    ):
        file.write("<?xml version='1.0' encoding='UTF-8'?>\n")
        file.write(_opening_tag("ODM", _root_attributes(request, "Snapshot", "snapshot"), NSMAP))
        file.write(etree.tostring(study_element(request, context.datasets), encoding="unicode"))
        file.write(etree.tostring(admin, encoding="unicode"))
        file.write(_opening_tag("ClinicalData", clinical, {None: NS}))
        for subject in snapshot.subjects(readers):
            file.write(subject)
        file.write("</ClinicalData></ODM>")
    return [context.entry(path, snapshot.rows)]


# -- the audit trail ---------------------------------------------------------------------------


def _audited(context) -> list[int]:
    return [
        i
        for i, dataset in enumerate(context.datasets)
        if dataset.code != ALLOCATION and _event_model(dataset) is not None
    ]


def _events(request, dataset: Dataset):
    events = _event_model(dataset).objects.filter(patient__study=request.study)
    if request.sites:
        events = events.filter(patient__site__in=request.sites)
    if request.audit_to is not None:
        events = events.filter(pgh_created_at__lte=request.audit_to)
    return events


def _in_period(request, events):
    if request.audit_from is not None:
        events = events.filter(pgh_created_at__gte=request.audit_from)
    return events


def audit_total(context) -> int:
    request = context.request
    return sum(
        _in_period(request, _events(request, context.datasets[i])).count()
        for i in _audited(context)
    )


def _trail(request, index: int, dataset: Dataset, items: list[Item]) -> Iterator[tuple]:
    """The dataset's events, oldest first, each with its items' values before and after
    (the previous event of the same row, whatever the period)."""
    tracked = [item for item in items if item.lookup is not None]
    previous = {
        f"before_{n}": Window(
            Lag(F(item.lookup)), partition_by=[F("pgh_obj_id")], order_by="pgh_id"
        )
        for n, item in enumerate(tracked)
    }
    visit = ("visit__code", "visit__repeat") if per_visit(dataset) else ()
    repeat = repeat_field(dataset)
    repeat_lookup = next((v.lookup for v in dataset.variables if v.name == repeat), None)
    stream = (
        _events(request, dataset)
        .annotate(**previous)
        .order_by("pgh_created_at", "pgh_id")
        .values_list(
            "pgh_id",
            "pgh_created_at",
            "pgh_label",
            "pgh_context",
            "patient__subject_code",
            "patient__site__code",
            *visit,
            *([repeat_lookup] if repeat_lookup else []),
            *(item.lookup for item in tracked),
            *previous,
        )
        .iterator(chunk_size=2000)
    )
    for row in stream:
        if request.audit_from is not None and row[1] < request.audit_from:
            continue
        yield (row[1], index, row[0]), row


class _Audit:
    def __init__(self, context) -> None:
        self.context = context
        self.request = context.request
        self.indexes = _audited(context)
        self.tracked = {
            i: [item for item in _items(context.datasets[i]) if item.lookup is not None]
            for i in self.indexes
        }
        protocols = self.request.protocols
        self.repeatable = {v.code for p in protocols for v in p.visits if v.repeatable}
        ids = set()
        for i in self.indexes:
            events = _in_period(self.request, _events(self.request, context.datasets[i]))
            ids |= set(events.values_list("pgh_context__user", flat=True).distinct())
        self.users = _Users(ids)

    def events(self) -> Iterator[etree._Element]:
        streams = [
            _trail(self.request, i, self.context.datasets[i], self.tracked[i]) for i in self.indexes
        ]
        for (_at, index, _pgh), row in heapq.merge(*streams, key=lambda keyed: keyed[0]):
            node = self.event(index, row)
            self.context.tick()
            if node is not None:
                yield node

    def event(self, index: int, row: tuple):
        dataset = self.context.datasets[index]
        tracked = self.tracked[index]
        _pgh, at, label, context, subject, site, *rest = row
        visit = repeat = None
        if per_visit(dataset):
            visit, repeat, *rest = rest
        key = None
        if repeat_field(dataset) and any(
            v.name == repeat_field(dataset) for v in dataset.variables
        ):
            key, *rest = rest
        after, before = rest[: len(tracked)], rest[len(tracked) :]
        group = element(
            "ItemGroupData", {"ItemGroupOID": group_oid(dataset), "TransactionType": "Context"}
        )
        if dataset.repeating:
            group.set("ItemGroupRepeatKey", odm_value(key) or "1")
        for item, old, new in zip(tracked, before, after, strict=True):
            old, new = odm_value(old), odm_value(new)
            if label == "insert":
                kind, value = ("Insert", new) if new is not None else (None, None)
            elif label == "delete":
                kind, value = ("Remove", None) if new is not None else (None, None)
            elif old == new:
                kind, value = None, None
            elif new is None:
                kind, value = "Remove", None
            else:
                kind, value = ("Insert" if old is None else "Update"), new
            if kind is None:
                continue
            data = element("ItemData", {"ItemOID": item.oid, "TransactionType": kind})
            if value is not None:
                data.set("Value", value)
            data.append(_audit_record(self.users, site, at, context))
            group.append(data)
        if not len(group):
            return None
        event = element(
            "StudyEventData", {"StudyEventOID": event_oid(visit), "TransactionType": "Context"}
        )
        if visit is not None and (visit in self.repeatable or (repeat or 1) > 1):
            event.set("StudyEventRepeatKey", str(repeat))
        event.append(
            element(
                "FormData",
                {"FormOID": form_oid(dataset), "TransactionType": "Context"},
                group,
            )
        )
        return element(
            "SubjectData",
            {"SubjectKey": subject, "TransactionType": "Context"},
            element("SiteRef", {"LocationOID": location_oid(site)}),
            event,
        )


def write_audit(context) -> list[dict]:
    request = context.request
    path = context.folder("odm-audit") / f"{request.study.code}_audit.xml"
    audit = _Audit(context)
    versions = list(request.study.protocol_versions.order_by("loaded_at"))
    written = 0
    with etree.xmlfile(str(path), encoding="utf-8") as xf:
        xf.write_declaration()
        attributes = _root_attributes(request, "Transactional", "audit")
        with xf.element(tag("ODM"), attributes, nsmap=NSMAP):
            xf.write(study_element(request, context.datasets))
            xf.write(admin_element(request, audit.users.listed(), _sites(request), []))
            clinical = {
                "StudyOID": study_oid(request.study),
                "MetaDataVersionOID": mdv_oid(versions[-1].version),
            }
            with xf.element(tag("ClinicalData"), clinical):
                for subject in audit.events():
                    xf.write(subject)
                    written += 1
    return [context.entry(path, written)]


WRITERS = {
    "odm": Writer(write=write_snapshot, total=rows_total),
    "odm-audit": Writer(write=write_audit, total=audit_total),
}
