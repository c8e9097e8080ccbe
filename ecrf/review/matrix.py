"""The SDV matrix: a page of patients × the protocol's visits, each cell the forms' states.

Four queries whatever the number of patients and forms: the patients (the page), their
visits, their form index entries (every form table and the safety log at once, the
seriousness of adverse events annotated), the counts of their queries not closed, and
which visits hold a valid investigator signature; the plan is applied in Python. The
backlog of
a whole site counts in one more query, grouped by patient and form.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db.models import BooleanField, Count, ExpressionWrapper, OuterRef, Q, Subquery
from django.utils.translation import gettext as _

from ecrf.patients.models import DataLock, FormIndexEntry, Patient, Visit
from ecrf.patients.visits import conditions_met, patient_visit_forms
from ecrf.review.plan import AE_CODE, SAE_CODE, sdv_sampled, with_seriousness
from ecrf.review.queries import open_queries_by_visit
from ecrf.review.signatures import signed_visit_ids
from ecrf.review.states import CellState, cell_state, is_partly_verified
from ecrf.safety.models import AdverseEvent, SaeReport
from ecrf.studies.models import ProtocolVersion


@dataclass
class FormCell:
    """One form instance (or a form still to enter) of a cell."""

    code: str
    label: str
    state: CellState
    entry: FormIndexEntry | None = None
    required: bool = False  # by the SDV plan

    @property
    def partly_verified(self) -> bool:
        return self.entry is not None and is_partly_verified(self.entry)


@dataclass
class VisitCell:
    """A visit of a patient in the matrix: its forms, and what the review knows of it."""

    visit: Visit | None  # None: the patient's logs (adverse events, SAE reports)
    forms: list[FormCell] = field(default_factory=list)
    # The queries not closed on the visit and its forms (one query for the page); frozen
    # and locked from the freezes and locks over the whole visit (the study's, the site's,
    # the casebook's, its own); signed: a valid signature of the visit itself.
    open_queries: int = 0
    frozen: bool = False
    locked: bool = False
    signed: bool = False

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(cell.state for cell in self.forms)
        return {state.value: counted.get(state, 0) for state in CellState}

    @property
    def due(self) -> list[FormCell]:
        return [cell for cell in self.forms if cell.state == CellState.SDV_NEEDED]

    @property
    def expected_versions(self) -> str:
        """What the bulk verification was shown: "entry:version,..." (sdv_mark_visit)."""
        return ",".join(f"{cell.entry.pk}:{cell.entry.version}" for cell in self.due)

    @property
    def summary(self) -> CellState | None:
        """The cell's colour: SDV needed first, then verified, entered, not entered."""
        counts = self.counts
        for state in (
            CellState.SDV_NEEDED,
            CellState.VERIFIED,
            CellState.ENTERED,
            CellState.NOT_ENTERED,
        ):
            if counts[state.value]:
                return state
        return None


@dataclass
class MatrixRow:
    patient: Patient
    sampled: bool
    cells: list[list[VisitCell]]  # one list per column: a visit and its repeats
    log: VisitCell

    @property
    def backlog(self) -> int:
        return sum(len(c.due) for column in self.cells for c in column) + len(self.log.due)


def matrix_columns(protocol) -> list[tuple[str, str]]:
    """(code, name) of the protocol's visits, in its order."""
    return [(visit.code, visit.name) for visit in protocol.visits]


def _log_labels(entries):
    """Entries with the adverse event's number (an AE, or the AE of an SAE report) and
    the report's number, for the log's names (AE-003, AE-003 initial report)."""
    return entries.annotate(
        ae_number=Subquery(
            AdverseEvent.objects.filter(pk=OuterRef("object_id")).values("number")[:1]
        ),
        sae_ae_number=Subquery(
            SaeReport.objects.filter(pk=OuterRef("object_id")).values("adverse_event__number")[:1]
        ),
        sae_number=Subquery(
            SaeReport.objects.filter(pk=OuterRef("object_id")).values("number")[:1]
        ),
    )


def _log_label(protocol, entry) -> str:
    if entry.form_code == AE_CODE and entry.ae_number is not None:
        return f"AE-{entry.ae_number:03d}"
    if entry.form_code == SAE_CODE and entry.sae_ae_number is not None:
        number = entry.sae_number
        kind = _("initial report") if number == 0 else _("follow-up %d") % number
        return f"AE-{entry.sae_ae_number:03d} {kind}"
    return protocol.form_label(entry.form_code)


def _shared_protocol_versions(patients: list[Patient]) -> None:
    """One ProtocolVersion object per version, so that each definition is parsed once."""
    shared: dict[int, ProtocolVersion] = {}
    for patient in patients:
        patient.protocol_version = shared.setdefault(
            patient.protocol_version_id, patient.protocol_version
        )


def sdv_matrix(patients: list[Patient]) -> list[MatrixRow]:
    """The rows of a page of patients (read with their protocol version): five queries,
    the visits, the signed ones, the locks, the form index entries and the counts of
    queries not closed."""
    _shared_protocol_versions(patients)
    visits = defaultdict(list)
    read = list(
        Visit.objects.filter(patient__in=patients).order_by("patient", "sequence", "repeat")
    )
    signed = signed_visit_ids(v.pk for v in read)
    for visit in read:
        visit.signed = visit.pk in signed
        visits[visit.patient_id].append(visit)
    entries = defaultdict(list)
    locks = _whole_visit_locks(patients)
    for entry in _log_labels(
        with_seriousness(FormIndexEntry.objects.filter(patient__in=patients))
    ).order_by("patient", "visit", "form_code", "object_id"):
        entries[entry.patient_id].append(entry)
    queries = open_queries_by_visit(patients)
    rows = [_row(patient, visits[patient.pk], entries[patient.pk]) for patient in patients]
    for row in rows:
        _mark_locks(row, locks)
        for column in row.cells:
            for cell in column:
                cell.open_queries = queries.get((row.patient.pk, cell.visit.pk), 0)
        row.log.open_queries = queries.get((row.patient.pk, None), 0)
    return rows


def _whole_visit_locks(patients: list[Patient]) -> list[DataLock]:
    """The freezes and locks in place over whole visits of these patients (one query): the
    study's, their sites', their casebooks' and their visits'. A form's own lock leaves the
    rest of its visit open, so it does not colour the cell (the visit page lists it)."""
    if not patients:
        return []
    studies = {patient.study_id for patient in patients}
    sites = {patient.site_id for patient in patients}
    return list(
        DataLock.objects.active().filter(
            Q(level=DataLock.Level.STUDY, study_id__in=studies)
            | Q(level=DataLock.Level.SITE, study_id__in=studies, site_id__in=sites)
            | Q(level__in=[DataLock.Level.PATIENT, DataLock.Level.VISIT], patient__in=patients)
        )
    )


def _covers(lock: DataLock, patient: Patient, visit: Visit | None) -> bool:
    if lock.level == DataLock.Level.STUDY:
        return lock.study_id == patient.study_id
    if lock.level == DataLock.Level.SITE:
        return lock.study_id == patient.study_id and lock.site_id == patient.site_id
    if lock.level == DataLock.Level.PATIENT:
        return lock.patient_id == patient.pk
    return visit is not None and lock.visit_id == visit.pk


def _mark_locks(row: MatrixRow, locks: list[DataLock]) -> None:
    mine = [lock for lock in locks if lock.patient_id in (None, row.patient.pk)]
    for cell in [c for column in row.cells for c in column] + [row.log]:
        kinds = {lock.kind for lock in mine if _covers(lock, row.patient, cell.visit)}
        cell.frozen = DataLock.Kind.FREEZE in kinds
        cell.locked = DataLock.Kind.LOCK in kinds


def _row(patient: Patient, visits: list[Visit], entries: list[FormIndexEntry]) -> MatrixRow:
    protocol = patient.protocol_version.protocol
    spec = protocol.sdv
    sampled = sdv_sampled(patient)
    conditions = conditions_met(patient)

    def form_cell(code: str, label: str, entry: FormIndexEntry | None) -> FormCell:
        serious = bool(entry is not None and getattr(entry, "serious", False))
        required = spec.requires(code, serious=serious, sampled=sampled)
        state = cell_state(entry, required=required)
        return FormCell(code=code, label=label, state=state, entry=entry, required=required)

    by_visit = defaultdict(list)
    for entry in entries:
        by_visit[entry.visit_id].append(entry)
    columns = {code: [] for code, _name in matrix_columns(protocol)}
    for visit in visits:
        cell = VisitCell(visit=visit, signed=getattr(visit, "signed", False))
        mine = by_visit.get(visit.pk, [])
        if visit.visit_date is not None:
            try:
                expected = patient_visit_forms(patient, visit.code, conditions)
            except KeyError:  # a visit the patient's protocol version does not have
                expected = []
            codes = [f.form for f in expected]
            codes += sorted({e.form_code for e in mine} - set(codes))
            for code in codes:
                label = protocol.form_label(code)
                instances = [e for e in mine if e.form_code == code]
                cell.forms += [form_cell(code, label, e) for e in instances] or [
                    form_cell(code, label, None)
                ]
        columns.setdefault(visit.code, []).append(cell)
    log = VisitCell(visit=None)
    log.forms = [form_cell(e.form_code, _log_label(protocol, e), e) for e in by_visit.get(None, [])]
    return MatrixRow(patient=patient, sampled=sampled, cells=list(columns.values()), log=log)


@dataclass
class SdvProgress:
    """The SDV of a site: the complete forms the plan requires, and how many are verified."""

    required: int = 0
    verified: int = 0

    @property
    def backlog(self) -> int:
        return self.required - self.verified

    @property
    def percent(self) -> int | None:
        """Verified of required, in whole per cent (None: nothing required yet)."""
        return None if not self.required else self.verified * 100 // self.required


def sdv_progress(patients, *, versions: dict[int, ProtocolVersion]) -> dict[int, SdvProgress]:
    """Site id -> the forms the plan requires that are complete, and those verified, for a
    queryset of patients: one query, grouped by site, patient and form (the plan is applied
    to each patient in Python, as the matrix does). `versions`: the study's protocol
    versions by id. A site with nothing entered has no key."""
    rows = (
        with_seriousness(
            FormIndexEntry.objects.filter(
                Q(status=FormIndexEntry.Status.COMPLETE) | Q(review_state="verified"),
                patient__in=patients,
            )
        )
        .annotate(
            verified=ExpressionWrapper(Q(review_state="verified"), output_field=BooleanField())
        )
        .values(
            "patient__site_id",
            "patient__subject_code",
            "patient__protocol_version_id",
            "form_code",
            "serious",
            "verified",
        )
        .annotate(n=Count("pk"))
        .order_by()
    )
    progress: dict[int, SdvProgress] = defaultdict(SdvProgress)
    sampled: dict[tuple[str, int], bool] = {}
    for row in rows:
        key = (row["patient__subject_code"], row["patient__protocol_version_id"])
        version = versions[key[1]]
        if key not in sampled:
            sampled[key] = sdv_sampled(Patient(subject_code=key[0], protocol_version=version))
        spec = version.protocol.sdv
        if spec.requires(row["form_code"], serious=row["serious"], sampled=sampled[key]):
            site = progress[row["patient__site_id"]]
            site.required += row["n"]
            site.verified += row["n"] if row["verified"] else 0
    return dict(progress)


def sdv_backlog(patients, *, versions: dict[int, ProtocolVersion]) -> int:
    """How many complete forms the plan requires that are not verified, for a queryset of
    patients (a whole site, a study): one query (`sdv_progress`). `versions`: the study's
    protocol versions by id."""
    return sum(site.backlog for site in sdv_progress(patients, versions=versions).values())
