"""Benchmarks that print figures (`make bench`); never run by the test suite.

Runs on a throw-away database created like the test database (test_<name>), so it
never touches demo or production data: loads both protocols and the demo data, adds
patients in bulk, then times the pages people use most with Django's test client.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecrf.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    override_settings,
    setup_databases,
    setup_test_environment,
    teardown_databases,
)
from django.utils import timezone  # noqa: E402

from ecrf.patients.models import Patient, Visit  # noqa: E402

PATIENTS = int(os.environ.get("BENCH_PATIENTS", "5000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "20"))


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


if __name__ == "__main__":
    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        main()
    finally:
        connection.close()
        teardown_databases(old, verbosity=0)
