"""`seed_demo`: both studies, the demo accounts, and patients at every stage, made through
the services; a second run changes nothing."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pghistory.models
import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from ecrf.accounts.models import Membership
from ecrf.crfs.models import FORM_MODELS, DrugAccountability, Mrss
from ecrf.demo.management.commands.seed_demo import DEFAULT_PASSWORD
from ecrf.patients.models import Allocation, AllocationList, Deviation, Patient, Visit
from ecrf.safety.models import AdverseEvent, LabAlert, SaeNotification
from ecrf.safety.selectors import initial_reports_for, sae_rows
from ecrf.studies.models import Study
from tests.clock import NOW_UTC

RCT, COHORT = "NCT00479934", "NCT04206644"
MEMBERSHIPS = {
    ("investigator.bordeaux", RCT, "BXP", "investigator"),
    ("coordinator.bordeaux", RCT, "BXP", "coordinator"),
    ("investigator.strasbourg", RCT, "STR", "investigator"),
    ("monitor.bordeaux", RCT, "BXP", "monitor"),
    ("datamanager", RCT, None, "data_manager"),
    ("datamanager", COHORT, None, "data_manager"),
    ("admin", RCT, None, "admin"),
    ("admin", COHORT, None, "admin"),
    ("investigator.rennes", COHORT, "REN", "investigator"),
}
S = Patient.Status
PATIENTS = {
    "BXP": [S.COMPLETED, S.ENROLLED, S.ENROLLED, S.ENROLLED, S.SCREENING, S.SCREEN_FAILED],
    "STR": [S.ENROLLED, S.SCREENING],
    "REN": [S.ENROLLED, S.ENROLLED, S.ENROLLED, S.SCREENING],
}


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    tables = {
        "users": get_user_model().objects.count(),
        "memberships": Membership.objects.count(),
        "lists": AllocationList.objects.count(),
        "slots taken": Allocation.objects.filter(patient__isnull=False).count(),
        "patients": Patient.objects.count(),
        "visits": Visit.objects.count(),
        "deviations": Deviation.objects.count(),
        "audit events": pghistory.models.Events.objects.count(),
    }
    return tables | {code: model.objects.count() for code, model in FORM_MODELS.items()}


@pytest.fixture(scope="module")
def _seeded_once(django_db_setup, django_db_blocker):
    """Seeded twice, once for the module (a few seconds), and rolled back afterwards.

    On the tests' clock, half an hour before each test reads it (tests/conftest.py starts
    every test at NOW): a demo is seeded before anyone opens it.
    """
    seeded_at = NOW_UTC - timedelta(minutes=30)
    with (
        time_machine.travel(seeded_at, tick=True),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        first = seed()
        before = counts()
        second = seed()
        yield first, second, before
        transaction.set_rollback(True)


@pytest.fixture
def seeded(_seeded_once, db):
    return _seeded_once


def test_a_second_run_changes_nothing(seeded):
    first, second, before = seeded
    assert "12 patient(s) created" in first
    assert "0 patient(s) created" in second
    assert counts() == before
    assert Study.objects.filter(code__in=[RCT, COHORT]).count() == 2


def test_demo_users_and_their_memberships(seeded):
    usernames = {name for name, *_ in MEMBERSHIPS}
    users = get_user_model().objects.filter(username__in=usernames)
    assert {u.username for u in users} == usernames
    assert all(u.check_password(DEFAULT_PASSWORD) for u in users)
    rows = Membership.objects.filter(user__in=users)
    assert {(m.user.username, m.study.code, m.site and m.site.code, m.role) for m in rows} == (
        MEMBERSHIPS
    )
    admin = users.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert not users.exclude(username="admin").filter(is_superuser=True).exists()
    assert {(m.user.username, m.study.code) for m in rows.filter(unblinded=True)} == {
        ("admin", RCT)
    }


def test_allocation_lists_and_randomisation(seeded):
    lists = AllocationList.objects.filter(study__code=RCT).order_by("site__code")
    assert [(x.site.code, x.seed, x.created_by.username) for x in lists] == [
        ("BXP", 20260101, "admin"),
        ("STR", 20260102, "admin"),
    ]
    assert all(x.slots.count() >= 20 for x in lists)
    randomised = Patient.objects.filter(study__code=RCT, day0_date__isnull=False)
    assert randomised.count() == 5
    assert Allocation.objects.filter(patient__in=randomised).count() == 5


def test_patients_per_site_and_status(seeded):
    for site, statuses in PATIENTS.items():
        patients = Patient.objects.filter(site__code=site).order_by("subject_code")
        assert [p.status for p in patients] == statuses, site
        assert [p.subject_code for p in patients] == [
            f"{site}-{n:03d}" for n in range(1, len(statuses) + 1)
        ]
    groups = Patient.objects.filter(site__code="REN").order_by("subject_code")
    assert [p.group for p in groups] == ["SSC", "SLE", "HD", "SSC"]
    creators = {p.subject_code[:3]: p.created_by.username for p in Patient.objects.all()}
    assert creators == {
        "BXP": "investigator.bordeaux",
        "STR": "investigator.strasbourg",
        "REN": "investigator.rennes",
    }


def test_nothing_is_dated_in_the_future(seeded):
    today = timezone.localdate()
    assert not Visit.objects.filter(visit_date__gt=today).exists()
    assert not Patient.objects.filter(day0_date__gt=today).exists()


def test_upcoming_visits_show_an_overdue_and_a_due_soon_visit(seeded):
    today = timezone.localdate()
    open_visits = Visit.objects.filter(
        patient__status=S.ENROLLED,
        status__in=[Visit.Status.PLANNED, Visit.Status.IN_PROGRESS],
        earliest_date__isnull=False,
    )
    overdue = open_visits.filter(latest_date__lt=today)
    assert [(v.patient.subject_code, v.code) for v in overdue] == [("BXP-004", "M1")]
    due_soon = open_visits.filter(
        latest_date__gte=today, earliest_date__lte=today + timedelta(days=14)
    )
    assert ("BXP-003", "M6") in [(v.patient.subject_code, v.code) for v in due_soon]


def test_the_completed_patient_went_from_screening_to_m12(seeded):
    patient = Patient.objects.get(subject_code="BXP-001")
    visits = {v.code: v.status for v in patient.visits.all()}
    assert visits == dict.fromkeys(["SCR", "M0", "M1", "M3", "M6", "M12"], "complete")
    totals = dict(Mrss.objects.filter(patient=patient).values_list("visit__code", "total"))
    assert totals["M12"] is not None
    assert totals["SCR"] > 20 and totals["M12"] < totals["M0"]
    compliance = DrugAccountability.objects.filter(patient=patient).values_list(
        "compliance_pct", flat=True
    )
    assert len(compliance) == 3 and all(90 <= c <= 100 for c in compliance)


def test_the_missed_m1_and_the_late_m3_are_deviations(seeded):
    patient = Patient.objects.get(subject_code="BXP-003")
    m1 = patient.visits.get(code="M1")
    assert m1.status == Visit.Status.MISSED and m1.missed_reason
    assert patient.visits.get(code="M3").status == Visit.Status.COMPLETE
    deviations = {(d.visit.code, d.category, d.days_outside) for d in patient.deviations.all()}
    assert deviations == {("M1", "missed_visit", None), ("M3", "out_of_window", 7)}


def test_screen_failure_and_screening_patients(seeded):
    failed = Patient.objects.get(subject_code="BXP-006")
    assert Mrss.objects.get(patient=failed).total <= 20
    checklist = FORM_MODELS["eligibility"].objects.get(patient=failed)
    assert checklist.answers["I3"] is False
    assert checklist.eligible is False
    assert "I3" in checklist.screen_failure_reasons
    screening = Patient.objects.get(subject_code="BXP-005")
    assert screening.visits.get(code="SCR").status == Visit.Status.IN_PROGRESS


def test_sclero_jak_laboratory_visits(seeded):
    lab = {
        p.subject_code: p.visits.get(code="LAB").status
        for p in Patient.objects.filter(site__code="REN", status=S.ENROLLED)
    }
    assert lab == {"REN-001": "complete", "REN-002": "in_progress", "REN-003": "complete"}
    ssc = Patient.objects.get(subject_code="REN-001")
    for code in ("mdm_cytokines", "mdm_flow"):
        conditions = (
            FORM_MODELS[code].objects.filter(patient=ssc).values_list("condition", flat=True)
        )
        assert sorted(conditions) == ["ruxolitinib", "untreated"]
        donors = FORM_MODELS[code].objects.filter(patient__subject_code="REN-003")
        assert {(c.condition, c.serum_donor_id) for c in donors} == {
            ("hd_serum_untreated", ssc.pk),
            ("hd_serum_ruxolitinib", ssc.pk),
        }
    waiting = Patient.objects.get(subject_code="REN-004")
    assert waiting.visits.get(code="V0").status == Visit.Status.IN_PROGRESS


def test_safety_stories_an_sae_due_soon_one_overdue_and_a_reported_susar(seeded):
    datamanager = get_user_model().objects.get(username="datamanager")
    study = Study.objects.get(code=RCT)
    rows = {
        row.event.term: row
        for row in sae_rows(initial_reports_for(datamanager, study=study), now=timezone.now())
    }
    assert set(rows) == {"Infected digital ulcer", "Syncope", "Pneumonia"}

    due_soon = rows["Infected digital ulcer"]
    assert due_soon.report.submitted_at is None and not due_soon.overdue
    assert timedelta(hours=18) < due_soon.time_left <= timedelta(hours=19)

    overdue = rows["Syncope"]
    assert overdue.report.submitted_at is None and overdue.overdue
    assert overdue.event.patient.site.code == "STR"

    susar = rows["Pneumonia"]
    assert susar.event.susar and not susar.overdue
    assert susar.time_to_report == timedelta(hours=5, minutes=25)
    assert susar.follow_ups == 1
    # Reported to the authorities on day 9 of its 15: on time, whatever today is.
    assert susar.susar.days == 15 and not susar.susar_overdue
    follow_up = susar.event.sae_reports.get(number=1)
    assert {c["field"] for c in follow_up.changes} >= {"outcome", "end_date", "ongoing"}
    assert SaeNotification.objects.filter(report__adverse_event=susar.event).count() == 2


def test_safety_lab_prompts_one_answered_by_an_ae_one_open(seeded):
    answered = LabAlert.objects.get(patient__subject_code="BXP-002", analyte="alt_u_l")
    assert answered.status == LabAlert.Status.AE_RECORDED
    assert answered.adverse_event.term == "ALT increased"
    open_prompt = LabAlert.objects.get(patient__subject_code="STR-001")
    assert (open_prompt.analyte, open_prompt.status) == ("platelets_x10e9_l", "open")
    assert AdverseEvent.objects.filter(patient__study__code=COHORT).count() == 0
