"""The export benchmark (issue 14, item 5: flat memory, measured), a section of bench.py.

On its throw-away database: the demo, then patients of NCT00479934 written with COPY (no
service, no history trigger: a restore's load), each with the six scheduled visits (SCR to
M12) done and every form the protocol lists at them filled and complete (the pregnancy
test for women of childbearing potential), a kit allocated and dispensed, a few adverse
events, and the form index. The answers stay inside the fields' ranges and the derived
values are the models' own (mRSS total from the areas through ecrf.scoring, DLQI and HAQ
scores from `compute_derived()` on a pool of answer sets, compliance from the kit's
dispensing): the database's CHECK and unique constraints hold for every row.

At 5,000 and again at 10,000 patients (BENCH_EXPORT_PATIENTS=5000,10000), each format of
MEASURED that the export service offers is exported by the service (`export_run`) in a
fresh process, so that its peak resident memory (VmHWM) is the export's alone, the fastest
of BENCH_EXPORT_REPEAT=3 runs kept (a shared machine's noise is not the export's); the
baseline is a PostgreSQL `COPY (SELECT ...) TO STDOUT (FORMAT csv, HEADER)` of each
dataset's own query (same columns, joins and order), written to files. One table at the
end, with the issue's targets.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

RCT = "NCT00479934"
MEASURED = ("csv", "xlsx", "odm")
STEPS = tuple(int(n) for n in os.environ.get("BENCH_EXPORT_PATIENTS", "5000,10000").split(",") if n)
# Each export and each COPY is run this many times, the fastest kept (and the highest
# peak): the machine may be shared, and a figure is its best case, not its noise.
REPEAT = int(os.environ.get("BENCH_EXPORT_REPEAT", "3"))
EXPORTER = "datamanager"
# The targets.
CSV_COPY_RATIO, ODM_COPY_RATIO = 2.0, 4.0
PEAK_RSS_MB, RSS_GROWTH = 250.0, 0.10
# Inclusions spread over two years, long enough ago that every patient has done M12.
FIRST_DAY0 = date(2023, 1, 9)
INCLUSION_DAYS = 730
POOL = 400  # answer sets of the scored questionnaires, each scored once
KIT_UNITS, UNITS_PER_DAY = 800, 4  # the demo's kit: four 100 mg capsules a day


# -- the generated patients --------------------------------------------------------------------


@dataclass
class Subject:
    """One generated patient: what the tables written after it need to know."""

    id: int
    site_id: int
    code: str
    investigator_id: int
    day0: date
    sex: str
    birth_year: int
    childbearing: bool | None
    severity: int  # the baseline mRSS
    kit: str = ""
    # Visit code -> (visit id, visit date), in protocol order.
    visits: dict[str, tuple[int, date]] = field(default_factory=dict)


def _stamp(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@contextmanager
def _load():
    """One transaction whose rows skip the triggers, as a restore's do (the pghistory
    triggers and the foreign-key checks; CHECK and unique constraints still hold). Without
    a superuser's privilege the triggers run and the load is slower."""
    from django.db import DatabaseError, connection, transaction

    with transaction.atomic():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError:
            pass
        yield


def _reserve(cursor, model, count: int) -> int:
    """The first of `count` ids taken from the model's sequence (the rows give their ids)."""
    table = model._meta.db_table
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    sequence = cursor.fetchone()[0]
    cursor.execute("SELECT nextval(%s)", [sequence])
    first = cursor.fetchone()[0]
    if count > 1:
        cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
    return first


def _default(model_field):
    from django.db import models

    if model_field.has_default():
        value = model_field.get_default()
        return json.dumps(value) if isinstance(model_field, models.JSONField) else value
    if model_field.null:
        return None
    if isinstance(model_field, (models.CharField, models.TextField)):
        return ""
    return _REQUIRED


_REQUIRED = object()


def _copy(cursor, model, rows) -> int:
    """COPY the rows (dicts by attname; a field left out takes its default) into the
    model's table; the rows written."""
    from psycopg import sql

    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return 0
    # Rows without an id take the next of the table's sequence.
    fields = [f for f in model._meta.concrete_fields if f.attname in first or not f.primary_key]
    names = [(f.attname, _default(f)) for f in fields]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table),
        sql.SQL(", ").join(sql.Identifier(f.column) for f in fields),
    )
    count = 0
    with cursor.cursor.copy(statement) as copy:
        for row in itertools.chain([first], rows):
            values = tuple(row.get(name, default) for name, default in names)
            if _REQUIRED in values:
                missing = [n for (n, d), v in zip(names, values, strict=True) if v is _REQUIRED]
                raise ValueError(f"{model.__name__}: no value for {missing}")
            copy.write_row(values)
            count += 1
    return count


def _scored_pool(model, answers_of, rng) -> list[dict]:
    """POOL answer sets with the derived values the model computes from them."""
    from ecrf.crfs.base import CrfBase

    bookkeeping = {f.name for f in CrfBase._meta.get_fields()} | {"id"}
    pool = []
    for _ in range(POOL):
        instance = model(**answers_of(rng))
        instance.compute_derived()
        pool.append(
            {
                f.attname: getattr(instance, f.attname)
                for f in model._meta.concrete_fields
                if f.name not in bookkeeping
            }
        )
    return pool


def _dlqi_answers(rng) -> dict:
    from ecrf.crfs.models import DLQI_QUESTIONS

    answers = {}
    for name, choices in DLQI_QUESTIONS.items():
        values = list(choices.values)
        weights = [1, 2, 4, 6, 2][: len(values)] if name != "q7a" else [2, 6, 1]
        answers[name] = rng.choices(values, weights=weights[: len(values)])[0]
    if answers["q7a"] != "no":
        answers["q7b"] = ""
    return answers


def _haq_answers(rng) -> dict:
    from ecrf.scoring import haq

    level = rng.choice((0, 0, 1, 1, 2))
    answers = {item: min(3, max(0, level + rng.choice((-1, 0, 0, 1)))) for item in haq.ITEMS}
    for aid in haq.AIDS:
        answers[aid] = rng.random() < 0.05
    for help_ in haq.HELP:
        answers[help_] = rng.random() < 0.04
    answers["aid_other"] = "Adapted pen" if rng.random() < 0.02 else ""
    for scale in haq.VAS_SCALES:
        answers[scale] = rng.randint(0, 80)
    return answers


def _mrss_areas(total: int, rng) -> dict[str, int]:
    from ecrf.scoring import mrss

    areas = dict.fromkeys(mrss.AREAS, 0)
    for _ in range(total):
        area = rng.choice([a for a, score in areas.items() if score < 3])
        areas[area] += 1
    return areas


TERMS = (
    "Periorbital oedema",
    "Nausea",
    "Muscle cramps",
    "Diarrhoea",
    "Fatigue",
    "Rash",
    "Anaemia",
    "Headache",
    "Œdème des membres inférieurs",
    "Nausées après la prise",
    "Digital ulcer infection",
    "Raynaud's phenomenon worsening",
)
ASSESSORS = ("Dr Martin", "Dr Bernard", "Dr Dubois", "Dr Lefèvre")
BIOPSY_SITES = ("left forearm", "right forearm")


class Forms:
    """The answers of each form of the protocol, for one patient at one visit."""

    def __init__(self, rng: random.Random, protocol):
        from ecrf.crfs.models import Dlqi, Haq

        self.rng = rng
        self.protocol = protocol
        self.dlqi = _scored_pool(Dlqi, _dlqi_answers, rng)
        self.haq = _scored_pool(Haq, _haq_answers, rng)
        self.eligibility = json.dumps(
            {c.id: c.kind == "inclusion" for c in protocol.eligibility_for(None)}
        )

    def answers(self, code: str, s: Subject, visit: str, day: date) -> dict:
        try:
            make = getattr(self, f"_{code}")
        except AttributeError:
            raise SystemExit(f"bench_exports: no generator for the form {code!r}") from None
        return make(s, visit, day)

    def _demographics(self, s, visit, day):
        r = self.rng
        return {
            "birth_year": s.birth_year,
            "birth_month": r.randint(1, 12),
            "sex": s.sex,
            "childbearing_potential": s.childbearing,
            "initials": "".join(r.choice("ABCDEFGHJKLMNPRST") for _ in range(2)),
        }

    def _consent(self, s, visit, day):
        return {"consent_date": day, "consent_version": "2.1", "signed_by_investigator": True}

    def _medical_history(self, s, visit, day):
        r = self.rng
        treated = r.random() < 0.1
        start = day - timedelta(days=r.randint(200, 900))
        return {
            "ssc_type": "systemic" if r.random() < 0.85 else "cutaneous",
            "diagnosis_year": r.randint(max(s.birth_year + 18, 1990), day.year),
            "en_coup_de_sabre": False,
            "ongoing_cancer": False,
            "uncontrolled_diabetes": False,
            "chronic_kidney_failure": False,
            "chronic_hepatitis": False,
            "hiv_infection": False,
            "interfering_treatment_name": "Methotrexate" if treated else "",
            "interfering_treatment_start_date": start if treated else None,
            "interfering_treatment_end_date": start + timedelta(days=150) if treated else None,
        }

    def _eligibility(self, s, visit, day):
        return {"answers": self.eligibility, "eligible": True}

    def _mrss(self, s, visit, day):
        from ecrf.scoring import mrss

        # Skin softening on treatment, never below the floor of a few points.
        fall = {"SCR": 0, "M0": 0, "M1": 1, "M3": 3, "M6": 6, "M12": 8}[visit]
        total = max(4, s.severity - fall + self.rng.randint(-2, 2))
        areas = _mrss_areas(total, self.rng)
        return {
            "exam_date": day,
            "assessor": ASSESSORS[s.site_id % len(ASSESSORS)],
            **areas,
            "total": mrss.score(areas).total,
        }

    def _echocardiography(self, s, visit, day):
        return {"exam_date": day, "lvef_pct": self.rng.randint(50, 75)}

    def _safety_labs(self, s, visit, day):
        r = self.rng

        def value(low, high, places):
            return round(Decimal(str(r.uniform(low, high))), places)

        return {
            "sample_date": day,
            "hemoglobin_g_dl": value(10.5, 15.5, 1),
            "neutrophils_x10e9_l": value(1.8, 7.5, 2),
            "platelets_x10e9_l": value(150, 400, 0),
            "bilirubin_umol_l": value(3, 20, 1),
            "bilirubin_umol_l_uln": Decimal("17.0"),
            "ast_u_l": value(10, 45, 1),
            "ast_u_l_uln": Decimal("35.0"),
            "alt_u_l": value(8, 55, 1),
            "alt_u_l_uln": Decimal("45.0"),
            "creatinine_umol_l": value(45, 110, 1),
            "creatinine_umol_l_uln": Decimal("100.0") if s.sex == "F" else Decimal("115.0"),
        }

    def _pregnancy_test(self, s, visit, day):
        return {"test_date": day, "test_type": self.rng.choice(("serum", "urine")),
                "result": "negative"}  # fmt: skip

    def _skin_biopsy(self, s, visit, day):
        return {
            "biopsy_date": day,
            "body_site": self.rng.choice(BIOPSY_SITES),
            "dermal_thickness_um": self.rng.randint(1400, 3800),
        }

    def _dlqi(self, s, visit, day):
        return self.rng.choice(self.dlqi)

    def _haq(self, s, visit, day):
        return self.rng.choice(self.haq)

    def _drug_dispensing(self, s, visit, day):
        return {
            "kit_number": s.kit,
            "dispensing_date": day,
            "units_dispensed": KIT_UNITS,
            "expected_units_per_day": UNITS_PER_DAY,
        }

    def _drug_accountability(self, s, visit, day):
        from ecrf.crfs.models import compute_compliance_pct

        dispensed = s.visits["M0"][1]
        days = (day - dispensed).days
        taken = min(KIT_UNITS, round(UNITS_PER_DAY * days * self.rng.uniform(0.8, 1.0)))
        returned = KIT_UNITS - taken
        return {
            "kit_number": s.kit,
            "accountability_date": day,
            "units_dispensed": KIT_UNITS,
            "units_returned": returned,
            "compliance_pct": compute_compliance_pct(
                units_dispensed=KIT_UNITS,
                units_returned=returned,
                expected_units_per_day=UNITS_PER_DAY,
                days=days,
            ),
        }


def _adverse_events(s: Subject, rng, version_id: int):
    """0 to 3 events of the patient, a tenth with a month-only onset, a few serious."""
    for number in range(1, rng.choice((0, 0, 1, 1, 2, 3)) + 1):
        onset = s.day0 + timedelta(days=rng.randint(3, 330))
        ongoing = rng.random() < 0.2
        serious = rng.random() < 0.05
        aware = _stamp(onset + timedelta(days=rng.randint(0, 10)), 14)
        yield {
            "patient_id": s.id,
            "number": number,
            "protocol_version_id": version_id,
            "term": rng.choice(TERMS),
            "meddra_llt_code": "",
            "meddra_pt_code": "",
            "onset_date": onset.isoformat()[:7] if rng.random() < 0.1 else onset.isoformat(),
            "end_date": None if ongoing else onset + timedelta(days=rng.randint(2, 40)),
            "ongoing": ongoing,
            "ctcae_grade": 3 if serious else rng.choice((1, 1, 1, 2, 2)),
            "serious": serious,
            "sae_hospitalisation": serious,
            "relatedness": rng.choice(("not_related", "unlikely", "possible", "probable")),
            "expected": rng.random() < 0.7,
            "action_taken": "interrupted" if serious else "none",
            "outcome": "recovering" if ongoing else "recovered",
            "aware_at": aware,
            "serious_aware_at": aware if serious else None,
            "created_at": aware,
            "updated_at": aware,
            "created_by_id": s.investigator_id,
        }


def patients_generate(study, count: int) -> None:
    """`count` more patients of the study, every form of their six visits filled, written
    with COPY; prints the time it took."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Max

    from ecrf.accounts.models import Membership
    from ecrf.crfs.models import FORM_MODELS
    from ecrf.patients.models import (
        Allocation,
        AllocationList,
        FormIndexEntry,
        Patient,
        Visit,
    )
    from ecrf.safety.models import AdverseEvent
    from ecrf.studies.models import StudySite
    from ecrf.studies.schedule import window_for

    start = time.perf_counter()
    version = study.current_protocol
    protocol = version.protocol
    done = Patient.objects.filter(study=study).count()
    rng = random.Random(done)
    visits = [
        (sequence, spec)
        for sequence, spec in enumerate(protocol.visits, start=1)
        if spec.kind == "scheduled" and not spec.repeatable
    ]
    study_sites = list(StudySite.objects.filter(study=study).select_related("site"))
    staff = dict(
        Membership.objects.filter(study=study, role="investigator", site__isnull=False)
        .order_by("-id")
        .values_list("site_id", "user_id")
    )
    fallback = get_user_model().objects.get(username="investigator.bordeaux").pk
    admin = get_user_model().objects.get(username="admin").pk
    used_kits = set(Allocation.objects.filter(study=study).values_list("kit_number", flat=True))
    next_kit = 500_000 + done
    with _load(), connection.cursor() as cursor:
        first_patient = _reserve(cursor, Patient, count)
        first_visit = _reserve(cursor, Visit, count * len(visits))
        subjects = []
        for n in range(count):
            study_site = study_sites[(done + n) % len(study_sites)]
            study_site.last_subject_number += 1
            sex = "F" if rng.random() < 0.8 else "M"
            birth_year = rng.randint(1950, 2002)
            while f"K-{next_kit}" in used_kits:
                next_kit += 1
            s = Subject(
                id=first_patient + n,
                site_id=study_site.site_id,
                code=f"{study_site.site.code}-{study_site.last_subject_number:05d}",
                investigator_id=staff.get(study_site.site_id, fallback),
                day0=FIRST_DAY0 + timedelta(days=rng.randrange(INCLUSION_DAYS)),
                sex=sex,
                birth_year=birth_year,
                childbearing=(birth_year >= 1976) if sex == "F" else None,
                severity=rng.randint(21, 38),
                kit=f"K-{next_kit}",
            )
            next_kit += 1
            for k, (_sequence, spec) in enumerate(visits):
                window = window_for(spec, s.day0)
                if spec.day_range is not None:  # the screening: the week before inclusion
                    day = s.day0 - timedelta(days=rng.randint(2, 7))
                else:
                    slack = min(3, spec.window_before_days, spec.window_after_days)
                    day = window.target + timedelta(days=rng.randint(-slack, slack))
                s.visits[spec.code] = (first_visit + n * len(visits) + k, day)
            subjects.append(s)

        _copy(
            cursor,
            Patient,
            (
                {
                    "id": s.id,
                    "study_id": study.pk,
                    "site_id": s.site_id,
                    "protocol_version_id": version.pk,
                    "subject_code": s.code,
                    "status": Patient.Status.COMPLETED,
                    "screening_date": s.visits["SCR"][1],
                    "day0_date": s.day0,
                    "planned_day0_date": s.day0,
                    "end_date": s.visits["M12"][1],
                    "end_reason": "Completed the follow-up",
                    "consent_date": s.visits["SCR"][1],
                    "conditions": json.dumps(["female_childbearing_potential"])
                    if s.childbearing
                    else "[]",
                    "created_at": _stamp(s.visits["SCR"][1], 9),
                    "created_by_id": s.investigator_id,
                }
                for s in subjects
            ),
        )
        specs = dict((spec.code, (seq, spec)) for seq, spec in visits)
        _copy(
            cursor,
            Visit,
            (
                {
                    "id": visit_id,
                    "patient_id": s.id,
                    "code": code,
                    "sequence": specs[code][0],
                    "protocol_version_id": version.pk,
                    "target_date": window.target,
                    "earliest_date": window.earliest,
                    "latest_date": window.latest,
                    "visit_date": day,
                    "status": Visit.Status.COMPLETE,
                }
                for s in subjects
                for code, (visit_id, day) in s.visits.items()
                for window in [window_for(specs[code][1], s.day0)]
            ),
        )
        # One imported allocation list per site for these patients, in blocks of four.
        lists = {
            ss.site_id: AllocationList.objects.create(
                study=study,
                site=ss.site,
                source=AllocationList.Source.IMPORTED,
                block_sizes=[4],
                note="benchmark",
                created_by_id=admin,
            )  # fmt: skip
            for ss in study_sites
        }
        taken = (
            Allocation.objects.filter(study=study)
            .values("site_id")
            .annotate(last=Max("sequence"), block=Max("block_number"))
            .values_list("site_id", "last", "block")
        )
        # A site's slots continue its sequence and block numbers.
        positions = {site_id: [last, block] for site_id, last, block in taken}

        def allocations():
            blocks: dict[int, list[str]] = {}
            for s in subjects:
                position = positions.setdefault(s.site_id, [0, 0])
                position[0] += 1
                if not blocks.get(s.site_id):
                    position[1] += 1
                    blocks[s.site_id] = rng.sample(["IMA", "IMA", "PBO", "PBO"], 4)
                yield {
                    "allocation_list_id": lists[s.site_id].pk,
                    "study_id": study.pk,
                    "site_id": s.site_id,
                    "sequence": position[0],
                    "block_number": position[1],
                    "block_size": 4,
                    "arm": blocks[s.site_id].pop(),
                    "kit_number": s.kit,
                    "patient_id": s.id,
                    "allocated_at": _stamp(s.day0, 11),
                    "allocated_by_id": s.investigator_id,
                }

        _copy(cursor, Allocation, allocations())

        forms = Forms(rng, protocol)
        written = {}
        for code, model in FORM_MODELS.items():
            wanted = [
                spec.code for _seq, spec in visits for form in spec.forms if form.form == code
            ]
            if not wanted:
                continue
            condition = {
                form.condition for _seq, spec in visits for form in spec.forms if form.form == code
            }
            first = _reserve(cursor, model, count * len(wanted))

            def rows(code=code, wanted=wanted, condition=condition, first=first):
                n = first
                for s in subjects:
                    if "female_childbearing_potential" in condition and not s.childbearing:
                        continue
                    for visit in wanted:
                        visit_id, day = s.visits[visit]
                        yield {
                            "id": n,
                            "patient_id": s.id,
                            "visit_id": visit_id,
                            "status": "complete",
                            "protocol_version_id": version.pk,
                            "entered_by_id": s.investigator_id,
                            "entered_at": _stamp(day, 16),
                            "updated_at": _stamp(day, 16),
                            **forms.answers(code, s, visit, day),
                        }
                        n += 1

            written[model] = (first, _copy(cursor, model, rows()))

        events = [e for s in subjects for e in _adverse_events(s, rng, version.pk)]
        first_event = _reserve(cursor, AdverseEvent, len(events))
        for n, event in enumerate(events):
            event["id"] = first_event + n
        _copy(cursor, AdverseEvent, events)

        # The form index, as the save services keep it: one row per instance.
        for model, (first, rows) in [
            *written.items(),
            (AdverseEvent, (first_event, len(events))),
        ]:
            cursor.execute(
                f"INSERT INTO {FormIndexEntry._meta.db_table} (patient_id, visit_id, form_code,"
                " object_id, key, status, version, updated_at, review_state) "
                f"SELECT patient_id, {'visit_id' if model is not AdverseEvent else 'NULL'}, "
                f"%s, id, '', {'status' if model is not AdverseEvent else repr('complete')}, "
                f"version, updated_at, '' FROM {model._meta.db_table} "
                "WHERE id BETWEEN %s AND %s",
                [model.FORM_CODE, first, first + rows - 1],
            )
        StudySite.objects.bulk_update(study_sites, ["last_subject_number"])
    tables = [m._meta.db_table for m in (Patient, Visit, Allocation, AdverseEvent, FormIndexEntry)]
    tables += [m._meta.db_table for m in written]
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(tables)}")
    form_rows = sum(rows for _first, rows in written.values())
    print(f"{'exports: patients written with COPY, analysed':<58} "
          f"{time.perf_counter() - start:7.2f} s   {count} patients, "
          f"{count * len(visits)} visits, {form_rows} forms, {len(events)} AEs")  # fmt: skip


# -- the measures --------------------------------------------------------------------------------


@dataclass
class Measure:
    fmt: str
    patients: int
    rows: int | None = None
    seconds: float | None = None
    peak_mb: float | None = None
    note: str = ""

    @property
    def rate(self) -> float | None:
        return self.rows / self.seconds if self.rows and self.seconds else None


def export_child(fmt: str, out: str) -> None:
    """In a fresh process: one export by the service; its figures as JSON on stdout."""
    from django.contrib.auth import get_user_model

    from ecrf.exports.services import export_run
    from ecrf.studies.models import Study

    study = Study.objects.get(code=RCT)
    by = get_user_model().objects.get(username=EXPORTER)
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    record = export_run(study=study, by=by, formats=(fmt,), out_dir=out)
    seconds = time.perf_counter() - start
    rows = sum(entry.get("rows", 0) for entry in record.files)
    figures = {"rows": rows, "seconds": seconds, "peak_mb": _status_mb("VmHWM"), "base_mb": before}
    print(json.dumps(figures))


def _status_mb(key: str) -> float:
    """A figure of this process's /proc status (VmHWM: the peak resident memory), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def best(measure, *args) -> Measure:
    """The fastest of REPEAT runs of a measure, with the highest peak memory of them."""
    runs = [measure(*args) for _ in range(REPEAT)]
    done = [m for m in runs if m.seconds is not None]
    if not done:
        return runs[0]
    fastest = min(done, key=lambda m: m.seconds)
    peaks = [m.peak_mb for m in done if m.peak_mb is not None]
    fastest.peak_mb = max(peaks) if peaks else None
    return fastest


def export_measure(fmt: str, patients: int) -> Measure:
    from django.conf import settings
    from django.db import connection

    out = tempfile.mkdtemp(prefix=f"bench-export-{fmt}-")
    try:
        env = {**os.environ, "BENCH_EXPORT_DATABASE": settings.DATABASES["default"]["NAME"]}
        connection.close()  # the child's export sees everything written so far
        done = subprocess.run(
            [sys.executable, __file__, fmt, str(Path(out) / "export")],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return Measure(fmt, patients, note=f"failed (exit {done.returncode})")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        return Measure(fmt, patients, figures["rows"], figures["seconds"], figures["peak_mb"])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def copy_measure(study, by, patients: int) -> Measure:
    """Each dataset of a csv export by its own query, COPY'd as CSV to a file; the time."""
    from django.db import connection

    from ecrf.exports import services

    request = services.export_prepare(study=study, by=by, formats=("csv",))
    out = Path(tempfile.mkdtemp(prefix="bench-export-copy-"))
    rows = 0
    try:
        start = time.perf_counter()
        with connection.cursor() as cursor:
            for dataset in services._datasets(request):
                lookups = [column.lookup for column in dataset.columns]
                query = dataset.queryset.values_list(*lookups).query
                select = connection.ops.compose_sql(*query.sql_with_params())
                with (
                    (out / f"{dataset.code}.csv").open("wb") as file,
                    cursor.cursor.copy(f"COPY ({select}) TO STDOUT (FORMAT csv, HEADER)") as copy,
                ):
                    for block in copy:
                        file.write(block)
                rows += cursor.cursor.rowcount
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return Measure("COPY", patients, rows, seconds, note="server side")


def _mark(ok: bool) -> str:
    return "pass" if ok else "MISS"


def report(measures: list[Measure]) -> None:
    copies = {m.patients: m for m in measures if m.fmt == "COPY"}
    print()
    print(f"{'format':<8} {'patients':>8} {'rows':>9} {'seconds':>8} {'rows/s':>9} "
          f"{'peak RSS MB':>11} {'× COPY':>7}")  # fmt: skip
    for m in measures:
        if m.seconds is None:
            print(f"{m.fmt:<8} {m.patients:>8} {m.note:>9}")
            continue
        copy = copies.get(m.patients)
        ratio = f"{m.seconds / copy.seconds:7.2f}" if copy and m.fmt != "COPY" else f"{'':>7}"
        peak = f"{m.peak_mb:11.1f}" if m.peak_mb is not None else f"{m.note:>11}"
        print(f"{m.fmt:<8} {m.patients:>8} {m.rows:>9} {m.seconds:8.2f} {m.rate:9.0f} "
              f"{peak} {ratio}")  # fmt: skip
    print("targets:")
    by = {(m.fmt, m.patients): m for m in measures if m.seconds is not None}
    for fmt, limit in (("csv", CSV_COPY_RATIO), ("odm", ODM_COPY_RATIO)):
        for patients in STEPS:
            m, copy = by.get((fmt, patients)), copies.get(patients)
            if m is None or copy is None:
                continue
            ratio = m.seconds / copy.seconds
            print(f"  {fmt} within {limit:g}× of COPY at {patients}: {ratio:.2f}×  "
                  f"{_mark(ratio <= limit)}")  # fmt: skip
    for fmt in MEASURED:
        peaks = [(p, by[(fmt, p)].peak_mb) for p in STEPS if (fmt, p) in by]
        for patients, peak in peaks:
            print(f"  {fmt} peak RSS under {PEAK_RSS_MB:g} MB at {patients}: {peak:.1f} MB  "
                  f"{_mark(peak < PEAK_RSS_MB)}")  # fmt: skip
        if len(peaks) > 1:
            (low, first), (high, last) = peaks[0], peaks[-1]
            growth = last / first - 1
            print(f"  {fmt} peak RSS at {high} at most {RSS_GROWTH:.0%} above {low}: "
                  f"{growth:+.1%}  {_mark(growth <= RSS_GROWTH)}")  # fmt: skip


def main() -> None:
    """The section: run by bench.py inside its throw-away database."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from ecrf.celery import app
    from ecrf.exports.services import FORMATS
    from ecrf.studies.models import Study

    app.conf.task_always_eager = True
    call_command("seed_demo", verbosity=0)
    study = Study.objects.get(code=RCT)
    by = get_user_model().objects.get(username=EXPORTER)
    measures, generated = [], 0
    for step in STEPS:
        patients_generate(study, step - generated)
        generated = step
        for fmt in MEASURED:
            if fmt not in FORMATS:
                measures.append(Measure(fmt, step, note="not built"))
                continue
            measures.append(best(export_measure, fmt, step))
        measures.append(best(copy_measure, study, by, step))
    report(measures)


if __name__ == "__main__":
    # A child of export_measure: the bench's database, one export.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecrf.settings")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from django.conf import settings as django_settings

    django_settings.DATABASES["default"]["NAME"] = os.environ["BENCH_EXPORT_DATABASE"]
    import django

    django.setup()
    export_child(sys.argv[1], sys.argv[2])
