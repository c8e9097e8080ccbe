"""Benchmarks that print figures (`make bench`); never run by the test suite.

Runs on throw-away databases created like the test database (test_<name>), so it never
touches demo or production data. The pages: loads both protocols and the demo data, adds
patients in bulk, then times the pages people use most with Django's test client. The
reminders sweep, on a database of its own (the pages' patients have windows and SAE
deadlines relative to today, which would fall due at the sweep's instants): 100,000
scheduled visits written in bulk, the sweep timed when nothing is due, when 5,000
reminders are, and again at that instant.

The review dashboards, on a database of their own: the demo data, then one site (Bordeaux)
with 1,000 patients included over a year, each with an overdue visit, consent, mRSS and
demographics in the form index (a third verified), one in ten with a pending SAE report
and one in five with a deviation; the monitor's site dashboard and the data manager's
study dashboard timed.

The review's queries, on a database of its own: one site with 1,000 patients
(BENCH_QUERY_PATIENTS), two queries each (one a monitor's, one the system's), and the site's
query list timed, with and without filters, and the ageing of the site's queries.

The exports (scripts/bench_exports.py), on a database of their own: 5,000 then 10,000
patients of NCT00479934 with every form of their six visits filled, written with COPY; csv,
xlsx and odm exported by the service in a fresh process each (seconds, rows per second,
peak RSS), beside a PostgreSQL COPY of the same queries, in one table with the targets.

The load (scripts/bench_load.py), on a database of its own: the production server
(gunicorn) and 20 users with sessions of their own, the bare view, the patient list and
the casebook without pause, then the users at work (login, list, casebook, mRSS saved)
pausing a second between requests: p50, p95, errors, throughput and the share of the
bare view's.

The API (scripts/bench_api.py), on a database of its own: 10,000 patients of NCT00479934
with every form filled, and every mRSS form pulled by a data manager's token through
/api/v1/studies/NCT00479934/forms/mrss/, 1,000 a page following "next": forms per second,
median and slowest page, the queries of the first and of the last page.

BENCH_SECTIONS=pages,reminders,dashboard,review,exports,load,api (all by default) picks them;
BENCH_PATIENTS=5000, BENCH_REMINDER_PATIENTS=20000 (5 visits each),
BENCH_DASHBOARD_PATIENTS=1000, BENCH_QUERY_PATIENTS=1000 and BENCH_EXPORT_PATIENTS=5000,10000,
BENCH_LOAD_PATIENTS=1000, BENCH_LOAD_USERS=20, BENCH_LOAD_REQUESTS=40, BENCH_LOAD_ROUNDS=4,
BENCH_API_PATIENTS=10000 size them, smaller for a quick run.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecrf.settings")
# No broker, whatever the environment names: the pages run their tasks in-process (eager),
# the reminders sweep's dispatch publishes to kombu's in-memory transport (nothing sends).
os.environ["CELERY_BROKER_URL"] = "memory://localhost/"

import django  # noqa: E402

django.setup()

from django.db import DatabaseError, connection, reset_queries, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    override_settings,
    setup_databases,
    setup_test_environment,
    teardown_databases,
)
from django.utils import timezone  # noqa: E402

from ecrf.patients.models import Patient, Visit  # noqa: E402
from scripts import bench_api, bench_exports, bench_load  # noqa: E402

PATIENTS = int(os.environ.get("BENCH_PATIENTS", "5000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "20"))
REMINDER_PATIENTS = int(os.environ.get("BENCH_REMINDER_PATIENTS", "20000"))
DASHBOARD_PATIENTS = int(os.environ.get("BENCH_DASHBOARD_PATIENTS", "1000"))
QUERY_PATIENTS = int(os.environ.get("BENCH_QUERY_PATIENTS", "1000"))
SECTIONS = os.environ.get(
    "BENCH_SECTIONS", "pages,reminders,dashboard,review,exports,load,api"
).split(",")


def timed(label: str, func, repeat: int = REPEAT, status: int = 200) -> None:
    response = func()  # warm-up
    if response.status_code != status:  # an error page is no figure for the page
        raise SystemExit(f"{label}: HTTP {response.status_code}")
    samples, queries = [], 0
    for _ in range(repeat):
        reset_queries()
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
        queries = len(connection.queries)
    print(
        f"{label:<58} median {statistics.median(samples):7.1f} ms"
        f"   p95 {sorted(samples)[int(0.95 * (len(samples) - 1))]:7.1f} ms   {queries:3d} queries"
    )


def main() -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from ecrf.celery import app
    from ecrf.patients.services import patient_create
    from ecrf.studies.models import Study, StudySite

    # The demo data's SAE emails are sent in-process (to the file backend), not queued to
    # a broker that may not be running.
    app.conf.task_always_eager = True
    start = time.perf_counter()
    call_command("seed_demo", verbosity=0)
    print(f"{'seed_demo (both protocols, 12 patients through the services)':<58} "
          f"{time.perf_counter() - start:7.2f} s")  # fmt: skip

    study = Study.objects.get(code="NCT00479934")
    users = get_user_model().objects
    investigator = users.get(username="investigator.bordeaux")
    start = time.perf_counter()
    for _ in range(200):
        patient_create(
            study=study, site=investigator.memberships.first().site, by=investigator,
            screening_date=timezone.localdate(),
        )  # fmt: skip
    elapsed = time.perf_counter() - start
    print(f"{'subject code allocation (patient_create, sequential)':<58} "
          f"{200 / elapsed:7.0f} patients/s")  # fmt: skip

    # Bulk patients over the 12 sites, each enrolled with a planned schedule.
    version = study.current_protocol
    today = timezone.localdate()
    study_sites = list(StudySite.objects.filter(study=study).select_related("site"))
    rows = []
    for n in range(PATIENTS):
        study_site = study_sites[n % len(study_sites)]
        study_site.last_subject_number += 1
        rows.append(
            Patient(
                study=study, site=study_site.site, protocol_version=version,
                subject_code=f"{study_site.site.code}-{study_site.last_subject_number:03d}",
                status=Patient.Status.ENROLLED, screening_date=today - timedelta(days=60),
                day0_date=today - timedelta(days=40), created_by=investigator,
            )
        )  # fmt: skip
    StudySite.objects.bulk_update(study_sites, ["last_subject_number"])
    Patient.objects.bulk_create(rows, batch_size=1000)
    visits = [
        Visit(
            patient=p, code=code, sequence=seq, protocol_version=version,
            target_date=today + timedelta(days=seq * 30 - 60),
            earliest_date=today + timedelta(days=seq * 30 - 67),
            latest_date=today + timedelta(days=seq * 30 - 53),
        )
        for p in Patient.objects.filter(study=study, visits__isnull=True)
        for seq, code in enumerate(["SCR", "M0", "M1", "M3", "M6", "M12"], start=1)
    ]  # fmt: skip
    Visit.objects.bulk_create(visits, batch_size=2000)
    total = Patient.objects.filter(study=study).count()
    print(f"{'patients in NCT00479934':<58} {total:7d}   visits {Visit.objects.count():d}")
    adverse_events_bulk(study, investigator)

    client = Client()
    base = f"/studies/{study.code}/patients/"
    bxp_patient = Patient.objects.filter(study=study, subject_code="BXP-001").first()
    with override_settings(DEBUG=True):
        client.force_login(investigator)
        timed("patient list, investigator (own site), page 1", lambda: client.get(base))
        timed("patient list, search by subject code", lambda: client.get(base + "?q=BXP-01"))
        timed("upcoming and overdue visits, investigator", lambda: client.get(base + "upcoming/"))
        timed("casebook of the patient who completed M12", lambda: client.get(
            f"{base}{bxp_patient.subject_code}/"))  # fmt: skip
        client.force_login(users.get(username="datamanager"))
        timed("patient list, data manager (all 12 sites), page 1", lambda: client.get(base))
        timed("patient list, data manager, filtered by status and site",
              lambda: client.get(base + "?status=enrolled&site=TOU"))  # fmt: skip
        timed("audit trail page of the completed patient", lambda: client.get(
            f"{base}{bxp_patient.subject_code}/audit/"))  # fmt: skip
        safety = f"/studies/{study.code}/safety/"
        timed("adverse events, data manager (all sites), page 1",
              lambda: client.get(safety + "adverse-events/"))  # fmt: skip
        filtered = safety + "adverse-events/?serious=yes&grade=3&site=TOU"
        timed("adverse events, data manager, serious grade 3 at one site",
              lambda: client.get(filtered))  # fmt: skip
        timed("serious adverse events with their clocks, page 1",
              lambda: client.get(safety + "sae/"))  # fmt: skip
        sdv = f"/studies/{study.code}/review/sdv/"
        timed("SDV matrix, data manager, one site (page 1 and backlog)",
              lambda: client.get(sdv + "?site=TOU"))  # fmt: skip
        client.force_login(users.get(username="monitor.bordeaux"))
        timed("SDV matrix, monitor of Bordeaux (page 1 and backlog)",
              lambda: client.get(sdv))  # fmt: skip
        client.force_login(investigator)
        timed("CRF save (mRSS): a correction posted, with its reason", mrss_correction(client),
              status=302)  # fmt: skip


def mrss_correction(client):
    """POSTs the M1 mRSS of an enrolled Bordeaux patient of the demo, one correction each
    (one area goes 1, 2, 1...), as the investigator does through the form."""
    from django.urls import reverse

    from ecrf.crfs.models import Mrss
    from ecrf.scoring.mrss import AREAS

    form = (
        Mrss.objects.select_related("patient__study", "visit")
        .filter(patient__site__code="BXP", patient__status=Patient.Status.ENROLLED)
        .filter(visit__code="M1")
        .first()
    )
    url = reverse(
        "crfs:form",
        args=[form.patient.study.code, form.patient.subject_code, "M1", 1, "mrss"],
    )
    data = {
        "exam_date": form.exam_date.isoformat(),
        "assessor": form.assessor,
        "not_assessable_reason": form.not_assessable_reason,
        **{area: "" if getattr(form, area) is None else getattr(form, area) for area in AREAS},
    }
    state = {"version": form.version, "face": form.face}

    def post():
        state["face"] = 2 if state["face"] == 1 else 1
        response = client.post(
            url,
            {**data, "face": state["face"], "version": state["version"],
             "reason": "Re-read the paper sheet"},
        )  # fmt: skip
        state["version"] += 1
        return response

    return post


def adverse_events_bulk(study, investigator) -> None:
    """One adverse event per bulk patient, one in ten serious with its initial report
    (half of them submitted), as the lists meet them in a large study."""
    from ecrf.safety.models import AdverseEvent, SaeReport

    now = timezone.now()
    patients = Patient.objects.filter(
        study=study, day0_date__isnull=False, adverse_events__isnull=True
    )
    events = []
    for n, patient in enumerate(patients.select_related("protocol_version")):
        serious = n % 10 == 0
        events.append(
            AdverseEvent(
                patient=patient, number=1, protocol_version=patient.protocol_version,
                term=("Pneumonia" if serious else "Nausea"),
                onset_date=(patient.day0_date + timedelta(days=5)).isoformat(), ongoing=True,
                ctcae_grade=3 if serious else 1 + n % 2, serious=serious,
                sae_hospitalisation=serious, relatedness="possible", expected=not serious,
                action_taken="none", outcome="recovering",
                aware_at=now - timedelta(hours=n % 48),
                serious_aware_at=now - timedelta(hours=n % 48) if serious else None,
                created_by=investigator,
            )
        )  # fmt: skip
    AdverseEvent.objects.bulk_create(events, batch_size=1000)
    reports = [
        SaeReport(
            adverse_event=event, number=0, aware_at=event.serious_aware_at,
            due_at=event.serious_aware_at + timedelta(hours=24),
            submitted_at=event.aware_at + timedelta(hours=3) if event.pk % 2 else None,
            submitted_by=investigator if event.pk % 2 else None,
        )
        for event in AdverseEvent.objects.filter(serious=True, sae_reports__isnull=True)
    ]  # fmt: skip
    SaeReport.objects.bulk_create(reports, batch_size=1000)
    print(f"{'adverse events / serious, in NCT00479934':<58} "
          f"{AdverseEvent.objects.count():7d}   SAE {len(reports):d}")  # fmt: skip


# -- the reminders sweep ---------------------------------------------------------------------

# Every bench patient is included on one of 40 days from REMINDER_DAY0 on, the same number a
# day. M1 (day 30, window 7 days either side) is the only visit with reminders in the first
# 40 days: a week before its window opens (day 16), the day it opens (23), its target day
# (30), three days before it closes (34), the day after it closed (38, overdue). So nothing
# is due on day 15 of the period, and on day 40 five days' inclusions are: 5 x 1/40 of the
# patients' M1, to the investigator and the coordinator of each site.
REMINDER_DAY0 = date(2030, 1, 7)
INCLUSION_DAYS = 40
NOTHING_DUE_DAY = REMINDER_DAY0 + timedelta(days=15)
DUE_DAY = REMINDER_DAY0 + timedelta(days=INCLUSION_DAYS)
PLANNED_VISITS = ("M1", "M3", "M6", "M12")  # and M0, done on day 0: 5 visits a patient


def reminders_main() -> None:
    """The reminders sweep on NCT00479934's 12 sites: bulk rows, then `reminders_sweep`."""
    from django.conf import settings

    from ecrf.celery import app
    from ecrf.studies.loader import load_protocol
    from ecrf.studies.models import Study

    # Not eager: the dispatch on commit (the bench database is no test transaction, so
    # on_commit fires) publishes the send_emails batches to the in-memory broker (above),
    # where nothing consumes them: the emails stay pending, nothing is sent.
    app.conf.task_always_eager = False
    load_protocol(Path(settings.BASE_DIR) / "ecrf/studies/protocols/NCT00479934.yaml")
    study = Study.objects.get(code="NCT00479934")
    staff = reminder_site_staff(study)
    small = max(REMINDER_PATIENTS // 10, 1)

    added = reminder_patients_bulk(study, small, staff)
    first = timed_sweep(f"sweep, nothing due ({added:,} visits)", NOTHING_DUE_DAY)
    added += reminder_patients_bulk(study, REMINDER_PATIENTS - small, staff)
    second = timed_sweep(f"sweep, nothing due ({added:,} visits)", NOTHING_DUE_DAY)
    timed_sweep(f"sweep, ~{REMINDER_PATIENTS // 8:,} visits due ({added:,} visits)", DUE_DAY)
    timed_sweep("sweep again at that instant (all recorded already)", DUE_DAY)
    print(f"{'queries, nothing due: 10x the visits':<58} {first:7d} -> {second:d}")
    with app.connection_for_write() as conn:
        batches = conn.SimpleQueue(app.conf.task_default_queue).qsize()
    print(f"{'send_emails batches published to the in-memory broker':<58} {batches:7d}")


def paris_morning(day: date) -> datetime:
    """08:15 in Paris that day (the protocol's send_at is 08:00): the beat's first sweep."""
    return datetime(
        day.year, day.month, day.day, 8, 15, tzinfo=ZoneInfo("Europe/Paris")
    ).astimezone(UTC)


def timed_sweep(label: str, day: date) -> int:
    """One sweep at 08:15 that day, timed (its on-commit dispatch included); its queries."""
    from ecrf.reminders.services import reminders_sweep

    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        result = reminders_sweep(at=paris_morning(day))
        elapsed = time.perf_counter() - start
    print(f"{label:<58} {elapsed:7.2f} s   {len(queries):3d} queries   due {len(result.due)}, "
          f"recorded {result.recorded}, emails written {result.emails}")  # fmt: skip
    return len(queries)


def reminder_site_staff(study) -> dict:
    """An investigator and a coordinator with an email at each of the study's sites."""
    from django.contrib.auth import get_user_model

    from ecrf.accounts.access import Role
    from ecrf.accounts.models import Membership
    from ecrf.studies.models import StudySite

    User = get_user_model()
    study_sites = list(StudySite.objects.filter(study=study).select_related("site"))
    users, memberships = {}, []
    for study_site in study_sites:
        for role in (Role.INVESTIGATOR, Role.COORDINATOR):
            name = f"{role}.{study_site.site.code.lower()}"
            users[(study_site.site_id, role)] = User(
                username=name, email=f"{name}@example.org", password="!"
            )
    User.objects.bulk_create(users.values())
    for (site_id, role), user in users.items():
        memberships.append(Membership(user=user, study=study, site_id=site_id, role=role))
    Membership.objects.bulk_create(memberships)
    return {site_id: user for (site_id, role), user in users.items() if role == Role.INVESTIGATOR}


@contextmanager
def without_triggers():
    """A transaction whose rows skip the triggers, as a restore's do: the history triggers
    (pghistory, a plpgsql function a row, slower the more rows one transaction writes:
    minutes for 100,000 visits) and the foreign-key checks. The bench's rows are right by
    construction and the sweep reads no history. Without the privilege it takes (a
    superuser's), the triggers run and the load is slower."""
    with transaction.atomic():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError:
            pass
        yield


def reminder_patients_bulk(study, count: int, investigators: dict) -> int:
    """`count` more patients over the study's sites, enrolled on one of the inclusion days,
    each with M0 done and M1 to M12 planned in their windows; returns the visits written."""
    from ecrf.studies.models import StudySite
    from ecrf.studies.schedule import window_for

    start = time.perf_counter()
    version = study.current_protocol
    protocol = version.protocol
    specs = {spec.code: (n, spec) for n, spec in enumerate(protocol.visits, start=1)}
    study_sites = list(StudySite.objects.filter(study=study).select_related("site"))
    done = Patient.objects.filter(study=study).count()
    patients = []
    for n in range(done, done + count):
        study_site = study_sites[n % len(study_sites)]
        study_site.last_subject_number += 1
        day0 = REMINDER_DAY0 + timedelta(days=(n // len(study_sites)) % INCLUSION_DAYS)
        patients.append(
            Patient(
                study=study, site=study_site.site, protocol_version=version,
                subject_code=f"{study_site.site.code}-{study_site.last_subject_number:05d}",
                status=Patient.Status.ENROLLED, screening_date=day0 - timedelta(days=14),
                day0_date=day0, created_by=investigators[study_site.site_id],
            )
        )  # fmt: skip
    visits = []
    for patient in patients:
        for code in ("M0", *PLANNED_VISITS):
            sequence, spec = specs[code]
            window = window_for(spec, patient.day0_date)
            done = code == "M0"
            visits.append(
                Visit(
                    patient=patient, code=code, sequence=sequence, protocol_version=version,
                    target_date=window.target, earliest_date=window.earliest,
                    latest_date=window.latest, visit_date=patient.day0_date if done else None,
                    status=Visit.Status.COMPLETE if done else Visit.Status.PLANNED,
                )
            )  # fmt: skip
    with without_triggers():
        StudySite.objects.bulk_update(study_sites, ["last_subject_number"])
        Patient.objects.bulk_create(patients, batch_size=2000)
        Visit.objects.bulk_create(visits, batch_size=5000)
    # The statistics autovacuum gathers after a load like this one (this may run on a server
    # without it): unanalysed, the planner takes the freshly written tables for empty.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE patients_patient, patients_visit")
    elapsed = time.perf_counter() - start
    print(f"{'reminders: patients and visits written in bulk, analysed':<58} {elapsed:7.2f} s"
          f"   {len(patients)} patients, {len(visits)} visits")  # fmt: skip
    return len(visits)


# -- the review dashboards --------------------------------------------------------------------


def dashboard_main() -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from ecrf.celery import app
    from ecrf.patients.models import Deviation, FormIndexEntry
    from ecrf.safety.models import AdverseEvent, SaeReport
    from ecrf.studies.models import Study, StudySite

    app.conf.task_always_eager = True
    call_command("seed_demo", verbosity=0)
    study = Study.objects.get(code="NCT00479934")
    users = get_user_model().objects
    investigator = users.get(username="investigator.bordeaux")
    start = time.perf_counter()
    version = study.current_protocol
    today = timezone.localdate()
    now = timezone.now()
    study_site = StudySite.objects.select_related("site").get(study=study, site__code="BXP")
    patients = []
    for n in range(DASHBOARD_PATIENTS):
        study_site.last_subject_number += 1
        day0 = today - timedelta(days=30 + n % 365)
        patients.append(
            Patient(
                study=study, site=study_site.site, protocol_version=version,
                subject_code=f"BXP-{study_site.last_subject_number:04d}",
                status=Patient.Status.ENROLLED, screening_date=day0 - timedelta(days=14),
                day0_date=day0, created_by=investigator,
            )
        )  # fmt: skip
    with without_triggers():
        study_site.save(update_fields=["last_subject_number"])
        Patient.objects.bulk_create(patients, batch_size=2000)
        visits = [
            Visit(
                patient=p, code="M1", sequence=3, protocol_version=version,
                target_date=today - timedelta(days=10), earliest_date=today - timedelta(days=17),
                latest_date=today - timedelta(days=3),
            )
            for p in patients
        ]  # fmt: skip
        Visit.objects.bulk_create(visits, batch_size=5000)
        # The form index only (the dashboard reads nothing else of the forms); object ids
        # out of the way of real rows.
        entries = [
            FormIndexEntry(
                patient=p, visit=v, form_code=code, object_id=10**9 + 3 * n + k,
                status="complete", version=1, updated_at=now,
                review_state="verified" if n % 3 == 0 else "",
                review_version=1 if n % 3 == 0 else None,
            )
            for n, (p, v) in enumerate(zip(patients, visits, strict=True))
            for k, code in enumerate(("consent", "mrss", "demographics"))
        ]  # fmt: skip
        FormIndexEntry.objects.bulk_create(entries, batch_size=5000)
        events = AdverseEvent.objects.bulk_create(
            [
                AdverseEvent(
                    patient=p, number=1, protocol_version=version, term="Pneumonia",
                    onset_date=p.day0_date.isoformat(), ongoing=True, ctcae_grade=3,
                    serious=True, sae_hospitalisation=True, relatedness="possible",
                    expected=False, action_taken="none", outcome="recovering",
                    aware_at=now - timedelta(hours=30), serious_aware_at=now - timedelta(hours=30),
                    created_by=investigator,
                )
                for p in patients[::10]
            ]
        )  # fmt: skip
        SaeReport.objects.bulk_create(
            [
                SaeReport(
                    adverse_event=e, number=0, aware_at=e.serious_aware_at,
                    due_at=e.serious_aware_at + timedelta(hours=24 if n % 2 else 48),
                )
                for n, e in enumerate(events)
            ]
        )  # fmt: skip
        Deviation.objects.bulk_create(
            [
                Deviation(
                    patient=p, category=Deviation.Category.OTHER, recorded_by=investigator,
                    reason="Blood sample taken a day late.",
                )
                for p in patients[::5]
            ]
        )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE patients_patient, patients_visit, patients_formindexentry, "
            "safety_adverseevent, safety_saereport, patients_deviation"
        )
    print(f"{'dashboard: one site of patients written in bulk, analysed':<58} "
          f"{time.perf_counter() - start:7.2f} s   {len(patients)} patients at BXP")  # fmt: skip

    client = Client()
    base = f"/studies/{study.code}/review/"
    with override_settings(DEBUG=True):
        client.force_login(users.get(username="monitor.bordeaux"))
        timed(f"dashboard of Bordeaux ({DASHBOARD_PATIENTS} patients), its monitor",
              lambda: client.get(base + "dashboard/sites/BXP/"))  # fmt: skip
        client.force_login(users.get(username="datamanager"))
        timed("dashboard of the study (12 sites), data manager",
              lambda: client.get(base + "dashboard/"))  # fmt: skip
        timed("overdue visits of Bordeaux, page 1",
              lambda: client.get(base + "visits/overdue/?site=BXP"))  # fmt: skip


# -- the review: queries -----------------------------------------------------------------------


def review_main() -> None:
    """One site with QUERY_PATIENTS patients and two queries each: the query lists timed."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from ecrf.celery import app
    from ecrf.review.models import Query, QueryMessage
    from ecrf.review.queries import query_ageing
    from ecrf.studies.models import Study, StudySite

    app.conf.task_always_eager = True
    call_command("seed_demo", verbosity=0)
    study = Study.objects.get(code="NCT00479934")
    users = get_user_model().objects
    investigator = users.get(username="investigator.bordeaux")
    monitor = users.get(username="monitor.bordeaux")
    site = investigator.memberships.first().site
    version = study.current_protocol
    today = timezone.localdate()
    start = time.perf_counter()
    study_site = StudySite.objects.get(study=study, site=site)
    patients = []
    for _ in range(QUERY_PATIENTS):
        study_site.last_subject_number += 1
        patients.append(
            Patient(
                study=study, site=site, protocol_version=version,
                subject_code=f"{site.code}-{study_site.last_subject_number:04d}",
                status=Patient.Status.ENROLLED, screening_date=today - timedelta(days=90),
                day0_date=today - timedelta(days=70), created_by=investigator,
            )
        )  # fmt: skip
    study_site.save(update_fields=["last_subject_number"])
    Patient.objects.bulk_create(patients, batch_size=1000)
    visits = Visit.objects.bulk_create(
        [
            Visit(
                patient=p, code=code, sequence=seq, protocol_version=version,
                target_date=today - timedelta(days=70 - seq * 30),
                earliest_date=today - timedelta(days=77 - seq * 30),
                latest_date=today - timedelta(days=63 - seq * 30),
            )
            for p in patients
            for seq, code in ((1, "M1"), (2, "M3"))
        ],
        batch_size=2000,
    )  # fmt: skip
    now = timezone.now()
    # M1: a monitor's query; M3: the system's (past its window).
    RAISERS = {"M1": ("manual", "", monitor), "M3": ("auto", "visit_overdue", None)}  # noqa: N806
    queries = Query.objects.bulk_create(
        [
            Query(
                patient_id=visit.patient_id, visit=visit, origin=origin, rule=rule,
                raised_by=by, opened_at=now - timedelta(days=n % 45),
            )
            for n, visit in enumerate(visits)
            for origin, rule, by in [RAISERS[visit.code]]
        ],
        batch_size=2000,
    )  # fmt: skip
    QueryMessage.objects.bulk_create(
        [
            QueryMessage(query=q, patient_id=q.patient_id, kind="raise",
                         text="Please check this visit's data.",
                         by=q.raised_by, at=q.opened_at)
            for q in queries
        ],
        batch_size=2000,
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE patients_patient, patients_visit, review_query, review_querymessage"
        )
    print(f"{'review: patients, visits and queries written in bulk':<58} "
          f"{time.perf_counter() - start:7.2f} s   {len(patients)} patients at {site.code}, "
          f"{len(queries)} queries")  # fmt: skip
    client = Client()
    base = f"/studies/{study.code}/review/queries/"
    with override_settings(DEBUG=True):
        client.force_login(users.get(username="datamanager"))
        timed(f"query list of site {site.code} ({QUERY_PATIENTS} patients), data manager",
              lambda: client.get(f"{base}sites/{site.code}/"))  # fmt: skip
        filtered = f"{base}sites/{site.code}/?status=open&age=over-30&visit=M3"
        timed("query list of the site, open, over 30 days, visit M3",
              lambda: client.get(filtered))  # fmt: skip
        timed("query list of the study, data manager (all sites)", lambda: client.get(base))
        client.force_login(monitor)
        timed("query list, monitor of the site, raised by the system",
              lambda: client.get(f"{base}?raised_by=system"))  # fmt: skip
        samples = []
        for _ in range(REPEAT):
            begin = time.perf_counter()
            query_ageing(Query.objects.filter(patient__site=site).unresolved())
            samples.append((time.perf_counter() - begin) * 1000)
        print(f"{'query_ageing of the site (one aggregate)':<58} median "
              f"{statistics.median(samples):7.1f} ms")  # fmt: skip
        review = f"/studies/{study.code}/review/"
        timed(f"SDV matrix of site {site.code} ({QUERY_PATIENTS} patients), its monitor",
              lambda: client.get(f"{review}sdv/?site={site.code}"))  # fmt: skip
        timed(f"awaiting signature at site {site.code}, its monitor",
              lambda: client.get(f"{review}signatures/?site={site.code}"))  # fmt: skip


if __name__ == "__main__":
    setup_test_environment()
    sections = (
        ("pages", main),
        ("reminders", reminders_main),
        ("dashboard", dashboard_main),
        ("review", review_main),
        ("exports", bench_exports.main),
        ("load", bench_load.main),
        ("api", bench_api.main),
    )
    for name, section in sections:
        if name not in SECTIONS:
            continue
        old = setup_databases(verbosity=0, interactive=False)
        try:
            section()
        finally:
            connection.close()
            teardown_databases(old, verbosity=0)
