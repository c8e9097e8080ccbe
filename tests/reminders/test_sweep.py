"""The sweep: each reminder on its day, to the right people, in their language, once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError

from ecrf.accounts.models import User
from ecrf.crfs.models import PregnancyTest
from ecrf.notifications.models import OutboundEmail
from ecrf.patients.models import Patient, Visit
from ecrf.reminders.models import Delivery, Kind, Reminder, ReminderPreference
from ecrf.reminders.services import reminders_sweep
from ecrf.safety.models import SaeReport
from tests.factories import AdverseEventFactory, VisitFactory, crf_factory
from tests.reminders.conftest import paris, rows, sweep

pytestmark = pytest.mark.django_db

OPENS_IN_7 = date(2027, 1, 20)  # M1's window opens on 27 January


def test_the_site_staff_get_the_window_reminder_on_its_day(world, trial):
    bxp, _str = trial
    result = sweep(paris(OPENS_IN_7))
    assert rows(patient=bxp) == [
        (Kind.WINDOW_OPENS, 7, "alice", "M1"),
        (Kind.WINDOW_OPENS, 7, "bob", "M1"),
    ]
    assert rows(patient=_str) == [(Kind.WINDOW_OPENS, 7, "charlie", "M1")]
    assert result.recorded == 3


def test_no_other_site_or_role_gets_a_bordeaux_reminder(world, trial):
    bxp, stras = trial
    sweep(paris(OPENS_IN_7))
    assert {r[2] for r in rows(patient=bxp)} == {"alice", "bob"}  # not monica, diane, charlie
    assert {r[2] for r in rows(patient=stras)} == {"charlie"}
    assert not Reminder.objects.filter(recipient__username__in=["monica", "diane", "rene"])


@pytest.mark.parametrize("day", [OPENS_IN_7 - timedelta(days=1), OPENS_IN_7 + timedelta(days=1)])
def test_nothing_the_day_before_or_after(world, trial, day):
    sweep(paris(day))
    assert rows() == []


def test_nothing_before_the_local_sending_hour_then_everything_until_midnight(world, trial):
    sweep(paris(OPENS_IN_7, 7, 59))
    assert rows() == []
    sweep(paris(OPENS_IN_7, 23, 59))
    assert len(rows()) == 3


@pytest.mark.parametrize(
    ("day", "kind", "occurrence"),
    [
        (date(2027, 1, 27), Kind.WINDOW_OPENS, 0),  # the window's first day
        (date(2027, 2, 3), Kind.BEFORE_TARGET, 0),
        (date(2027, 2, 7), Kind.WINDOW_CLOSES, 3),
        (date(2027, 2, 11), Kind.OVERDUE, 1),  # the day after the window's last day
        (date(2027, 2, 18), Kind.OVERDUE, 2),
    ],
)
def test_each_kind_of_visit_reminder_on_its_exact_day(world, trial, day, kind, occurrence):
    bxp, _ = trial
    sweep(paris(day))
    assert rows(patient=bxp, visit__code="M1") == [
        (kind, occurrence, "alice", "M1"),
        (kind, occurrence, "bob", "M1"),
    ]
    sweep(paris(day - timedelta(days=1)))
    sweep(paris(day + timedelta(days=1)))
    assert len(rows(patient=bxp, visit__code="M1", kind=kind)) == 2


def test_the_window_edges_are_inclusive_the_last_day_is_not_overdue(world, trial):
    bxp, _ = trial
    sweep(paris(date(2027, 2, 10)))  # M1's last day
    assert rows(patient=bxp, visit__code="M1") == []
    assert Visit.objects.get(patient=bxp, code="M1").latest_date == date(2027, 2, 10)


def test_the_sending_hour_stays_8_local_on_the_day_of_the_spring_change(world, trial):
    bxp, _ = trial
    m1 = bxp.visits.get(code="M1")
    # A window that opens on Sunday 28 March 2027: the clocks go forward at 02:00, so
    # 08:00 in Paris is 06:00 UTC that day (07:00 UTC the day before).
    Visit.objects.filter(pk=m1.pk).update(
        earliest_date=date(2027, 3, 28), target_date=date(2027, 4, 4), latest_date=date(2027, 4, 11)
    )
    sweep(datetime(2027, 3, 28, 5, 59, tzinfo=UTC))
    assert rows(visit=m1) == []
    sweep(datetime(2027, 3, 28, 6, 0, tzinfo=UTC))
    assert rows(visit=m1) == [
        (Kind.WINDOW_OPENS, 0, "alice", "M1"),
        (Kind.WINDOW_OPENS, 0, "bob", "M1"),
    ]
    recorded = Reminder.objects.filter(visit=m1)
    assert {(r.due_on, r.due_at) for r in recorded} == {
        (date(2027, 3, 28), datetime(2027, 3, 28, 6, 0, tzinfo=UTC))
    }


def test_a_sweep_run_twice_records_and_sends_each_reminder_once(
    world, trial, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = sweep(paris(OPENS_IN_7))
    with django_capture_on_commit_callbacks(execute=True):
        second = sweep(paris(OPENS_IN_7, 8, 15))
    assert (first.recorded, second.recorded) == (3, 0)
    assert (first.emails, second.emails) == (3, 0)
    assert sorted(m.to[0] for m in mail.outbox) == [
        "alice@example.org",
        "bob@example.org",
        "charlie@example.org",
    ]
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {"sent"}


def test_the_email_names_the_patient_visit_and_dates_in_the_recipients_language(
    world, trial, django_capture_on_commit_callbacks
):
    User.objects.filter(pk=world.bob.pk).update(language="en")  # Alice keeps French
    with django_capture_on_commit_callbacks(execute=True):
        sweep(paris(OPENS_IN_7))
    bxp, _ = trial
    by_user = {m.to[0]: m for m in mail.outbox}
    french, english = by_user["alice@example.org"], by_user["bob@example.org"]
    assert english.subject == (
        f"[NCT00479934] {bxp.subject_code}: the window of visit M1 (Month 1) opens in 7 days."
    )
    assert "Target date: 3 February 2027" in english.body
    assert "Window: 27 January 2027 to 10 February 2027 (Europe/Paris calendar)" in english.body
    assert f"http://127.0.0.1:8000/studies/NCT00479934/patients/{bxp.subject_code}/" in english.body
    assert french.subject == (
        f"[NCT00479934] {bxp.subject_code}\u00a0: la fenêtre de la visite M1 (Mois 1) "
        "s'ouvre dans 7 jours."
    )
    assert "3 février 2027" in french.body and "27 janvier 2027" in french.body


def test_no_arm_no_kit_in_any_email(world, trial, django_capture_on_commit_callbacks):
    from tests.factories import AllocationFactory

    bxp, _ = trial
    allocation = AllocationFactory(patient=bxp, arm="IMA", kit_number="K-4242")
    with django_capture_on_commit_callbacks(execute=True):
        sweep(paris(OPENS_IN_7))
    text = " ".join(m.subject + m.body for m in mail.outbox)
    for leak in ["IMA", "PBO", "Imatinib", "imatinib", "Placebo", "placebo", allocation.kit_number]:
        assert leak not in text


def test_a_visit_done_or_missed_or_a_patient_ended_gets_no_reminder(world, trial):
    bxp, stras = trial
    Visit.objects.filter(patient=bxp, code="M1").update(
        visit_date=date(2027, 1, 19), status=Visit.Status.IN_PROGRESS
    )
    Visit.objects.filter(patient=stras, code="M1").update(
        status=Visit.Status.MISSED, missed_reason="Patient abroad"
    )
    sweep(paris(OPENS_IN_7))
    assert rows() == []
    for status in sorted(Patient.ENDED):
        Patient.objects.filter(pk=bxp.pk).update(status=status)
        Visit.objects.filter(patient=bxp, code="M3").update(status=Visit.Status.PLANNED)
        sweep(paris(date(2027, 3, 28)))  # M3 (target 5 April) opens in 7 days... or later ones
        assert rows(patient=bxp) == [], status


def test_a_visit_done_before_its_email_left_cancels_it(world, trial):
    """The broker was down: the emails wait in the outbox (no commit callback ran here)."""
    bxp, _ = trial
    sweep(paris(OPENS_IN_7))
    waiting = Reminder.objects.filter(patient=bxp)
    assert {r.email.status for r in waiting} == {"pending"}
    Visit.objects.filter(patient=bxp, code="M1").update(
        visit_date=date(2027, 1, 20), status=Visit.Status.IN_PROGRESS
    )
    result = sweep(paris(OPENS_IN_7, 8, 15))
    assert result.cancelled == 2
    assert {(r.status, r.email.status) for r in waiting.all()} == {("cancelled", "cancelled")}
    # Strasbourg's visit did not take place: its reminder still goes.
    assert set(Reminder.objects.exclude(patient=bxp).values_list("status", "email__status")) == {
        ("queued", "pending")
    }


def test_a_digest_gathers_a_days_reminders_in_one_email(world, django_capture_on_commit_callbacks):
    from tests.reminders.conftest import enrol

    for patient in world.bxp_patients[:2]:
        enrol(patient)
    ReminderPreference.objects.create(user=world.alice, study=world.rct, delivery=Delivery.DIGEST)
    with django_capture_on_commit_callbacks(execute=True):
        result = sweep(paris(OPENS_IN_7))
    to = [m.to[0] for m in mail.outbox]
    assert to.count("alice@example.org") == 1 and to.count("bob@example.org") == 2
    digest = next(m for m in mail.outbox if m.to[0] == "alice@example.org")
    assert digest.subject.startswith("[NCT00479934] 2 rappels")  # Alice reads French
    for patient in world.bxp_patients[:2]:
        assert patient.subject_code in digest.body
    assert result.emails == 3


def test_opting_out_stops_visit_reminders_but_not_sae_ones(world, trial):
    bxp, _ = trial
    ReminderPreference.objects.create(
        user=world.alice, study=world.rct, delivery=Delivery.DIGEST, visit_reminders=False
    )
    report = _pending_sae(bxp, due=paris(date(2027, 1, 20), 14))
    sweep(paris(OPENS_IN_7, 9))  # 09:00: the SAE report is due at 14:00, within 6 h
    assert rows(patient=bxp) == [
        (Kind.SAE_DUE, 0, "alice", None),
        (Kind.SAE_DUE, 0, "bob", None),
        (Kind.WINDOW_OPENS, 7, "bob", "M1"),
    ]
    # The SAE reminder is never held for the digest.
    assert set(
        Reminder.objects.filter(kind=Kind.SAE_DUE, object_id=report.pk).values_list(
            "delivery", flat=True
        )
    ) == {"immediate"}


def _pending_sae(patient, *, due):
    event = AdverseEventFactory(
        patient=patient,
        serious=True,
        sae_hospitalisation=True,
        serious_aware_at=due - timedelta(hours=24),
        aware_at=due - timedelta(hours=24),
        ctcae_grade=3,
    )
    return SaeReport.objects.create(
        adverse_event=event, number=0, aware_at=due - timedelta(hours=24), due_at=due
    )


def test_an_sae_report_is_reminded_6_hours_before_its_deadline_then_each_day_late(world, trial):
    bxp, _ = trial
    due = paris(date(2027, 1, 12), 10)
    report = _pending_sae(bxp, due=due)

    def kinds():
        return rows(object_id=report.pk, kind__in=[Kind.SAE_DUE, Kind.SAE_OVERDUE])

    sweep(due - timedelta(hours=6, minutes=1))
    assert kinds() == []
    sweep(due - timedelta(hours=6))
    assert kinds() == [(Kind.SAE_DUE, 0, "alice", None), (Kind.SAE_DUE, 0, "bob", None)]
    sweep(due)
    sweep(due + timedelta(hours=23))
    sweep(due + timedelta(hours=24))
    assert [k for k in kinds() if k[2] == "alice"] == [
        (Kind.SAE_DUE, 0, "alice", None),
        (Kind.SAE_OVERDUE, 1, "alice", None),
        (Kind.SAE_OVERDUE, 2, "alice", None),
    ]
    SaeReport.objects.filter(pk=report.pk).update(
        submitted_at=due + timedelta(hours=25), submitted_by=world.alice
    )
    sweep(due + timedelta(hours=48))
    assert len(kinds()) == 6  # submitted: no third overdue reminder


def test_a_susar_near_its_deadline_reminds_the_sponsors_staff(world, trial):
    bxp, _ = trial
    report = _pending_sae(bxp, due=paris(date(2027, 1, 5), 10))
    event = report.adverse_event
    event.relatedness, event.expected = "probable", False
    event.save(update_fields=["relatedness", "expected"])
    acknowledged = paris(date(2027, 1, 6), 9)
    SaeReport.objects.filter(pk=report.pk).update(
        submitted_at=acknowledged - timedelta(hours=20),
        submitted_by=world.alice,
        acknowledged_at=acknowledged,
        acknowledged_by=world.diane,
    )
    deadline = acknowledged + timedelta(days=15)  # not fatal nor life-threatening
    sweep(deadline - timedelta(days=2, minutes=1))
    assert rows(object_id=event.pk, kind=Kind.SUSAR_DUE) == []
    sweep(deadline - timedelta(days=2))
    assert rows(object_id=event.pk, kind=Kind.SUSAR_DUE) == [(Kind.SUSAR_DUE, 0, "diane", None)]
    sweep(deadline)
    assert rows(object_id=event.pk, kind=Kind.SUSAR_OVERDUE) == [
        (Kind.SUSAR_OVERDUE, 1, "diane", None)
    ]


def test_a_pregnancy_test_is_reminded_before_a_planned_inclusion(world):
    patient = world.bxp_patients[2]
    planned = date(2027, 1, 11)
    Patient.objects.filter(pk=patient.pk).update(
        planned_day0_date=planned, conditions=["female_childbearing_potential"]
    )
    sweep(paris(date(2027, 1, 3)))
    assert rows(patient=patient) == []
    sweep(paris(date(2027, 1, 4)))  # the first day a test counts: 7 days before
    assert rows(patient=patient) == [
        (Kind.PREGNANCY_TEST, 7, "alice", None),
        (Kind.PREGNANCY_TEST, 7, "bob", None),
    ]
    # A test dated inside the period: no reminder two days before inclusion.
    screening = VisitFactory(patient=patient, code="SCR", sequence=0)
    crf_factory(PregnancyTest)(
        visit=screening, test_date=date(2027, 1, 6), test_type="urine", result="negative"
    )
    sweep(paris(date(2027, 1, 9)))
    assert len(rows(patient=patient)) == 2


def test_no_pregnancy_reminder_without_childbearing_potential(world):
    patient = world.bxp_patients[2]
    Patient.objects.filter(pk=patient.pk).update(planned_day0_date=date(2027, 1, 11))
    sweep(paris(date(2027, 1, 4)))
    assert rows(patient=patient) == []


def test_a_recipient_without_email_is_skipped_and_the_row_says_why(world, trial):
    User.objects.filter(pk=world.bob.pk).update(email="")
    sweep(paris(OPENS_IN_7))
    bob = Reminder.objects.get(recipient=world.bob)
    assert (bob.status, bob.note, bob.email) == (
        "skipped",
        "The recipient has no email address.",
        None,
    )
    assert Reminder.objects.get(recipient=world.alice).status == "queued"


def test_a_dry_run_writes_nothing_and_lists_what_would_go(world, trial):
    result = reminders_sweep(at=paris(OPENS_IN_7), dry_run=True)
    assert sorted((d.kind, d.recipient_id) for d in result.due) == sorted(
        (Kind.WINDOW_OPENS, user.pk) for user in (world.alice, world.bob, world.charlie)
    )
    assert not Reminder.objects.exists() and not OutboundEmail.objects.exists()


def test_the_command_runs_the_sweep_at_the_instant_given(world, trial, capsys):
    call_command("sweep_reminders", "--at", "2027-01-20T08:00+01:00", "--dry-run")
    out = capsys.readouterr().out
    assert "3 reminders would be recorded" in out
    assert "window_opens   BXP-001 visit M1 → alice [immediate]" in out
    assert not Reminder.objects.exists()
    call_command("sweep_reminders", "--at", "2027-01-20T08:00")  # naive: Paris time
    assert "3 new" in capsys.readouterr().out
    assert Reminder.objects.count() == 3


def test_the_beat_task_sweeps_now_or_at_the_instant_given(world, trial):
    from ecrf.reminders.tasks import sweep_reminders

    assert sweep_reminders.delay().get()["due"] == 0  # now: 15 December 2026
    result = sweep_reminders.delay("2027-01-20T08:00+01:00").get()
    assert (result["due"], result["recorded"], result["emails"]) == (3, 3, 3)
    assert sweep_reminders.delay("2027-01-20T08:15").get()["recorded"] == 0  # naive: Paris


@pytest.mark.parametrize("value", ["tomorrow", "2027-13-01T08:00", ""])
def test_the_command_refuses_an_instant_it_cannot_read(value):
    with pytest.raises(CommandError, match="is not a date and time: give ISO 8601"):
        call_command("sweep_reminders", "--at", value)


def test_the_sweep_takes_the_same_queries_for_1_and_20_patients(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import PatientFactory
    from tests.reminders.conftest import enrol

    def count(at):
        with CaptureQueriesContext(connection) as ctx:
            sweep(at)
        return len(ctx.captured_queries)

    enrol(world.bxp_patients[0])
    one = count(paris(OPENS_IN_7))
    for _ in range(19):
        enrol(PatientFactory(study=world.rct, site=world.bxp, created_by=world.alice))
    Reminder.objects.all().delete()
    OutboundEmail.objects.all().delete()
    twenty = count(paris(OPENS_IN_7))
    assert Reminder.objects.count() == 40
    assert one == twenty
