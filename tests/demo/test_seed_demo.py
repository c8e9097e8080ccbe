"""`seed_demo`: both studies, the demo accounts, and patients at every stage, made through
the services; a second run changes nothing."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from io import StringIO

import pghistory.models
import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format

from ecrf.accounts.models import Membership
from ecrf.crfs.models import FORM_MODELS, DrugAccountability, Mrss
from ecrf.demo.management.commands.seed_demo import DEFAULT_PASSWORD
from ecrf.notifications.models import OutboundEmail
from ecrf.patients.models import Allocation, AllocationList, Deviation, Patient, Visit
from ecrf.reminders.models import Delivery, Kind, Reminder, ReminderPreference
from ecrf.safety.models import AdverseEvent, LabAlert, SaeNotification
from ecrf.safety.selectors import initial_reports_for, sae_rows
from ecrf.studies.models import Study
from tests.clock import NOW_UTC, TODAY

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
        "reminders": Reminder.objects.count(),
        "reminder settings": ReminderPreference.objects.count(),
        "emails": OutboundEmail.objects.count(),
        "emails sent": OutboundEmail.objects.filter(status="sent").count(),
    }
    return tables | {code: model.objects.count() for code, model in FORM_MODELS.items()}


@pytest.fixture(scope="module")
def mail_dir(tmp_path_factory):
    """Where the seed's emails are written: the file backend of the demo, in a folder of
    the test's own rather than ./var/mail."""
    return tmp_path_factory.mktemp("mail")


@pytest.fixture(scope="module")
def _seeded_once(django_db_setup, django_db_blocker, mail_dir):
    """Seeded twice, once for the module (a few seconds), and rolled back afterwards.

    On the tests' clock, half an hour before each test reads it (tests/conftest.py starts
    every test at NOW): a demo is seeded before anyone opens it, at 09:30 in Paris, after
    the day's reminders went out at 08:00.
    """
    seeded_at = NOW_UTC - timedelta(minutes=30)
    mailer = {
        "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "OPTIONS": {"file_path": str(mail_dir)},
    }
    with (
        time_machine.travel(seeded_at, tick=True),
        override_settings(MAILERS={"default": mailer}),
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


def mails(folder) -> list[email.message.EmailMessage]:
    """The messages the file backend wrote, every file and every message of each."""
    separator = b"\n" + b"-" * 79 + b"\n"
    found = []
    for path in sorted(folder.iterdir()):
        for part in path.read_bytes().split(separator):
            if part.strip():
                found.append(email.message_from_bytes(part, policy=email.policy.default))
    return found


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


# -- reminders ---------------------------------------------------------------------------------


def reminder_rows(**filters) -> set[tuple]:
    """(day, subject, visit, kind, occurrence, recipient) of the reminders recorded."""
    return {
        (
            r.due_on,
            r.patient.subject_code,
            r.visit.code if r.visit else None,
            r.kind,
            r.occurrence,
            r.recipient.username,
        )
        for r in Reminder.objects.filter(**filters).select_related("patient", "visit", "recipient")
    }


def days_ago(n: int):
    return TODAY - timedelta(days=n)


def test_a_week_of_visit_reminders_went_out_at_their_hour(seeded):
    """BXP-004's M1: three days before its window closed, then overdue the day after; BXP-003's
    M6: a week before its window opens, on that same day. The monitor's queries the site has
    not answered, every 7 days they stay open: BXP-003's of 20 days on its 14th, BXP-002's
    of 40 days on its 35th and of 10 days on its 7th."""
    sent = reminder_rows(status=Reminder.Status.QUEUED, email__status="sent")
    bordeaux = ("investigator.bordeaux", "coordinator.bordeaux")
    assert sent == {
        *((days_ago(7), "BXP-004", "M1", Kind.WINDOW_CLOSES, 3, who) for who in bordeaux),
        *((days_ago(3), "BXP-004", "M1", Kind.OVERDUE, 1, who) for who in bordeaux),
        *((days_ago(3), "BXP-003", "M6", Kind.WINDOW_OPENS, 7, who) for who in bordeaux),
        *((days_ago(6), "BXP-003", None, Kind.QUERY, 14, who) for who in bordeaux),
        *((days_ago(5), "BXP-002", None, Kind.QUERY, 35, who) for who in bordeaux),
        *((days_ago(3), "BXP-002", None, Kind.QUERY, 7, who) for who in bordeaux),
    }
    for reminder in Reminder.objects.filter(email__status="sent").select_related("email"):
        # Sent at 08:00 in Paris on its day, as the beat's sweep would have.
        assert reminder.email.sent_at == reminder.due_at
        assert timezone.localtime(reminder.due_at).hour == 8


def test_todays_reminders_wait_in_the_outbox_for_the_worker(seeded):
    """Today's sweep ran (08:00 has passed): the pregnancy test before STR-002's planned
    inclusion and STR-001's overdue SAE report, their emails pending."""
    pending = reminder_rows(status=Reminder.Status.QUEUED, email__status="pending")
    assert pending == {
        (TODAY, "STR-002", None, Kind.PREGNANCY_TEST, 7, "investigator.strasbourg"),
        (TODAY, "STR-001", None, Kind.SAE_OVERDUE, 1, "investigator.strasbourg"),
    }
    planned = Patient.objects.get(subject_code="STR-002").planned_day0_date
    assert planned == TODAY + timedelta(days=7)
    assert not Reminder.objects.exclude(status=Reminder.Status.QUEUED).exists()


def test_the_digest_reader_and_the_english_reader(seeded):
    users = get_user_model().objects.in_bulk(field_name="username")
    assert {u.username for u in users.values() if u.language == "en"} == {"coordinator.bordeaux"}
    (digest,) = ReminderPreference.objects.all()
    assert (digest.user.username, digest.study.code, digest.delivery) == (
        "investigator.bordeaux",
        RCT,
        Delivery.DIGEST,
    )
    investigator = OutboundEmail.objects.filter(recipients=["investigator.bordeaux@example.org"])
    # One digest a day: BXP-004's M1 window, a query, a query, then three reminders.
    assert sorted((e.kind, e.reminders.count()) for e in investigator) == [
        ("reminder_digest", 1),
        ("reminder_digest", 1),
        ("reminder_digest", 1),
        ("reminder_digest", 3),
    ]
    # Dates in each reader's language: the target date of BXP-004's M1.
    target = Visit.objects.get(patient__subject_code="BXP-004", code="M1").target_date
    with translation.override("en"):
        english = date_format(target, "DATE_FORMAT")
    with translation.override("fr"):
        french = date_format(target, "DATE_FORMAT")
    coordinator = OutboundEmail.objects.filter(recipients=["coordinator.bordeaux@example.org"])
    assert coordinator.count() == 6 and {e.kind for e in coordinator} == {"reminder"}
    assert all(english in e.body for e in coordinator.filter(reminders__visit__code="M1"))
    about_m1 = investigator.filter(reminders__visit__code="M1").distinct()
    assert about_m1.count() == 2 and all(french in e.body for e in about_m1)


def test_the_sent_reminders_are_files_in_the_mail_folder(seeded, mail_dir):
    written = mails(mail_dir)
    sent = OutboundEmail.objects.filter(status="sent", kind__startswith="reminder")
    assert sent.count() == 10
    assert sorted((m["To"], m["Subject"].strip()) for m in written) == sorted(
        (e.recipients[0], e.subject) for e in sent
    )
    digest = next(m for m in written if m["Subject"].strip().startswith(f"[{RCT}] 3 "))
    body = digest.get_content()
    assert "BXP-002" in body and "BXP-003" in body and "BXP-004" in body
    assert "/profile/reminders/" in body


def test_the_upcoming_page_shows_the_next_reminders_and_those_sent(seeded, client):
    client.force_login(get_user_model().objects.get(username="investigator.bordeaux"))
    response = client.get(reverse("patients:upcoming", args=[RCT]), HTTP_ACCEPT_LANGUAGE="en")
    rows = {
        (visit.patient.subject_code, visit.code): (next_reminder, sent)
        for visit, _days, _pending, next_reminder, sent in response.context["rows"]
    }
    next_m1, sent_m1 = rows[("BXP-004", "M1")]
    assert (next_m1.kind, next_m1.occurrence, next_m1.day) == (Kind.OVERDUE, 2, days_ago(-4))
    assert [(s["kind"], s["statuses"]) for s in sent_m1] == [
        (Kind.WINDOW_CLOSES, [("sent", 2)]),
        (Kind.OVERDUE, [("sent", 2)]),
    ]
    next_m6, sent_m6 = rows[("BXP-003", "M6")]
    assert (next_m6.kind, next_m6.occurrence, next_m6.day) == (Kind.WINDOW_OPENS, 0, days_ago(-4))
    assert [(s["kind"], s["occurrence"]) for s in sent_m6] == [(Kind.WINDOW_OPENS, 7)]


def test_the_reminders_log_shows_sent_and_pending(seeded, client):
    client.force_login(get_user_model().objects.get(username="datamanager"))
    response = client.get(reverse("reminders:log", args=[RCT]), HTTP_ACCEPT_LANGUAGE="en")
    assert response.context["counts"] == {
        "sent": 12,
        "pending": 2,
        "failed": 0,
        "cancelled": 0,
        "skipped": 0,
    }


# -- the review ---------------------------------------------------------------------------------


def test_queries_at_every_age_and_status(seeded):
    from ecrf.review.models import Query
    from ecrf.review.queries import days_open

    manual = Query.objects.filter(origin=Query.Origin.MANUAL).select_related("patient")
    opened = sorted(days_open(q) for q in manual.filter(status="open"))
    assert opened == [3, 10, 20, 40]
    assert sorted(manual.values_list("status", flat=True)) == sorted(
        ["open"] * 4 + ["answered", "closed", "reopened"]
    )
    reopened = manual.get(status="reopened")
    assert [m.kind for m in reopened.messages.order_by("at", "pk")] == [
        "raise",
        "answer",
        "reopen",
    ]
    # The system's own: BXP-004's overdue M1, STR-001's overdue SAE report.
    auto = Query.objects.filter(origin=Query.Origin.AUTO).select_related("patient")
    assert sorted((q.patient.subject_code, q.rule) for q in auto) == [
        ("BXP-004", "visit_overdue"),
        ("STR-001", "sae_overdue"),
    ]


def test_verified_forms_a_reset_a_frozen_visit_and_a_locked_casebook(seeded):
    from ecrf.patients.models import DataLock, FormIndexEntry
    from ecrf.review.models import SdvMark

    completed = Patient.objects.get(subject_code="BXP-001")
    verified = FormIndexEntry.objects.filter(patient=completed, review_state="verified")
    assert verified.filter(form_code="mrss").count() == 6  # the primary endpoint, every visit
    reset = SdvMark.objects.get(kind="reset")
    assert (reset.patient.subject_code, reset.entry.form_code, reset.field) == (
        "BXP-002",
        "mrss",
        "face",
    )
    assert reset.entry.visit.code == "M3" and reset.entry.review_state == ""
    locks = {(lock.kind, lock.level): lock for lock in DataLock.objects.active()}
    assert locks[("lock", "patient")].patient == completed
    frozen = locks[("freeze", "visit")]
    assert (frozen.patient.subject_code, frozen.visit.code) == ("BXP-002", "M1")


def test_a_signed_visit_a_voided_signature_and_a_signed_casebook(seeded):
    from ecrf.review.models import Signature
    from ecrf.review.signatures import signature_valid

    signatures = {
        (s.patient.subject_code, s.visit.code if s.visit else None): s
        for s in Signature.objects.select_related("patient", "visit")
    }
    assert set(signatures) == {("BXP-002", "M1"), ("BXP-002", "M3"), ("BXP-001", None)}
    assert signatures[("BXP-002", "M1")].voided_at is None
    assert signature_valid(signatures[("BXP-002", "M1")])
    voided = signatures[("BXP-002", "M3")]
    assert voided.voided_at is not None and "M3" in voided.void_reason
    assert voided.voided_by.username == "investigator.bordeaux"
    assert signature_valid(signatures[("BXP-001", None)])
