"""Submitting SAE reports: password re-entry, a snapshot, one email per report, follow-ups."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ecrf.audit.models import AuthEvent
from ecrf.notifications.models import OutboundEmail
from ecrf.notifications.tasks import send_email
from ecrf.safety.models import SaeNotification, SaeReport
from ecrf.safety.services import (
    ae_create,
    ae_update,
    sae_follow_up,
    sae_submit_initial,
)
from tests.safety.conftest import ae_values, at, sae_values

pytestmark = pytest.mark.django_db

SPONSOR = "pharmacovigilance@chu-bordeaux.example"


@pytest.fixture
def submit(world, password, django_capture_on_commit_callbacks):
    """Submit a report as Alice and run what the commit queues (the eager email task)."""

    def submit(report, *, by=None, password=password, narrative=""):
        with django_capture_on_commit_callbacks(execute=True):
            return sae_submit_initial(
                report=report, by=by or world.alice, password=password, narrative=narrative
            )

    return submit


@pytest.fixture
def follow_up(world, password, django_capture_on_commit_callbacks):
    def follow_up(event, *, by=None, password=password, narrative="", aware_at=None):
        with django_capture_on_commit_callbacks(execute=True):
            return sae_follow_up(
                event=event,
                by=by or world.alice,
                password=password,
                narrative=narrative,
                aware_at=aware_at,
            )

    return follow_up


def reassess(event, by, **changes):
    """The site corrects the event (as the edit screen does), with a reason."""
    event.refresh_from_db()
    return ae_update(
        event=event,
        by=by,
        values=sae_values(**changes),
        expected_version=event.version,
        reason="new information from the hospital",
    )


# -- the initial report ----------------------------------------------------------------------


def test_wrong_password_changes_nothing_and_sends_nothing(world, serious_event, submit, mailoutbox):
    report = serious_event.sae_reports.get()
    with pytest.raises(ValidationError) as excinfo:
        submit(report, password="not-my-password")
    assert excinfo.value.message_dict == {"password": ["Password: your password is not correct."]}
    report.refresh_from_db()
    assert (report.submitted_at, report.submitted_by, report.snapshot) == (None, None, {})
    assert not OutboundEmail.objects.exists()
    assert not SaeNotification.objects.exists()
    assert mailoutbox == []


def test_wrong_passwords_count_towards_the_lockout_and_then_the_right_one_is_refused(
    world, serious_event, submit, mailoutbox
):
    report = serious_event.sae_reports.get()
    for _ in range(5):
        with pytest.raises(ValidationError):
            submit(report, password="not-my-password")
    failed = AuthEvent.objects.filter(kind=AuthEvent.Kind.REAUTH_FAILED, user=world.alice)
    assert failed.count() == 5
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.LOCKOUT, user=world.alice).exists()
    with pytest.raises(ValidationError) as excinfo:
        submit(report)
    assert "your account is locked" in excinfo.value.message_dict["password"][0]
    report.refresh_from_db()
    assert report.submitted_at is None
    assert not SaeNotification.objects.exists()


def test_empty_password_is_refused(world, serious_event, submit, mailoutbox):
    with pytest.raises(ValidationError) as excinfo:
        submit(serious_event.sae_reports.get(), password="")
    assert set(excinfo.value.message_dict) == {"password"}
    assert mailoutbox == []


def test_submission_records_the_event_as_reported_and_notifies_the_sponsor_once(
    world, serious_event, submit, mailoutbox
):
    before = timezone.now()
    report = submit(serious_event.sae_reports.get(), narrative=" Admitted on 21 October. ")
    report.refresh_from_db()
    assert before <= report.submitted_at <= timezone.now()
    assert report.submitted_by == world.alice
    assert report.narrative == "Admitted on 21 October."
    assert report.snapshot == {
        "term": "Pneumonia",
        "meddra_llt_code": "",
        "meddra_pt_code": "",
        "onset_date": "2026-10-20",
        "end_date": None,
        "ongoing": True,
        "ctcae_grade": 3,
        "serious": True,
        "sae_death": False,
        "sae_life_threatening": False,
        "sae_hospitalisation": True,
        "sae_disability": False,
        "sae_congenital_anomaly": False,
        "sae_important_medical_event": False,
        "relatedness": "not_related",
        "expected": True,
        "action_taken": "none",
        "outcome": "recovering",
        "death_date": None,
        "aware_at": "2026-10-21T07:30:00+00:00",
        "serious_aware_at": "2026-10-21T07:30:00+00:00",
        "sponsor_relatedness": "",
    }

    (email,) = OutboundEmail.objects.all()
    assert report.notification.email == email
    assert (email.kind, email.recipients, email.status) == ("sae_report", [SPONSOR], "sent")
    code = serious_event.patient.subject_code
    assert email.subject == f"[NCT00479934] Initial SAE report: {code} AE-001 Pneumonia"
    for line in (
        f"Patient: {code}",
        "Event: AE-001 Pneumonia",
        "Onset: 2026-10-20",
        "End: ongoing",
        "CTCAE grade: 3",
        "Seriousness: requires or prolongs hospitalisation",
        "Relatedness (investigator): Not related",
        "Site aware of the event at: 2026-10-21 07:30 UTC (2026-10-21 09:30 CEST site time)",
        "Site aware of the seriousness at: 2026-10-21 07:30 UTC (2026-10-21 09:30 CEST site time)",
        "Report due at: 2026-10-22 07:30 UTC (2026-10-22 09:30 CEST site time)",
        f"Submitted by: {world.alice.get_full_name()} (alice)",
        "Admitted on 21 October.",
    ):
        assert line in email.body.splitlines()
    (message,) = mailoutbox
    assert (message.subject, message.body, message.to) == (email.subject, email.body, [SPONSOR])


def test_email_is_in_english_whatever_the_language(world, serious_event, submit, mailoutbox):
    from django.utils import translation

    with translation.override("fr"):
        submit(serious_event.sae_reports.get())
    (message,) = mailoutbox
    assert "Initial SAE report" in message.subject
    assert "Outcome: Recovering/resolving" in message.body


def test_send_task_run_twice_sends_one_message(
    world, serious_event, password, django_capture_on_commit_callbacks, mailoutbox
):
    # Keep the dispatch queued at commit, then deliver the task twice by hand.
    with django_capture_on_commit_callbacks(execute=False) as queued:
        sae_submit_initial(
            report=serious_event.sae_reports.get(), by=world.alice, password=password
        )
    assert len(queued) == 1
    email = OutboundEmail.objects.get()
    assert email.status == OutboundEmail.Status.PENDING
    assert send_email.delay(email.pk).get() == "sent"
    assert send_email.delay(email.pk).get() == "already-claimed"
    assert len(mailoutbox) == 1
    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboundEmail.Status.SENT, 1)


def test_a_rolled_back_submission_sends_nothing(world, serious_event, password, mailoutbox):
    report = serious_event.sae_reports.get()
    with pytest.raises(RuntimeError), transaction.atomic():
        sae_submit_initial(report=report, by=world.alice, password=password)
        raise RuntimeError("the request failed after the service")
    report.refresh_from_db()
    assert report.submitted_at is None
    assert not OutboundEmail.objects.exists()
    assert mailoutbox == []


def test_submitting_twice_is_refused(world, serious_event, submit, mailoutbox):
    report = submit(serious_event.sae_reports.get())
    first_submission = report.submitted_at
    with pytest.raises(ValidationError, match="already submitted"):
        submit(serious_event.sae_reports.get())
    report.refresh_from_db()
    assert report.submitted_at == first_submission
    assert OutboundEmail.objects.count() == 1
    assert len(mailoutbox) == 1


@pytest.mark.parametrize("persona", ["bob", "charlie", "monica", "diane"])
def test_only_an_investigator_of_the_site_submits(world, serious_event, submit, persona):
    with pytest.raises(PermissionDenied):
        submit(serious_event.sae_reports.get(), by=getattr(world, persona))
    assert serious_event.sae_reports.get().submitted_at is None
    assert not OutboundEmail.objects.exists()


# -- follow-ups ------------------------------------------------------------------------------


def test_follow_ups_are_numbered_and_list_what_changed_since_the_previous_report(
    world, serious_event, submit, follow_up, mailoutbox
):
    submit(serious_event.sae_reports.get())
    reassess(
        serious_event,
        world.bob,
        ongoing=False,
        end_date=date(2026, 11, 2),
        outcome="recovered",
    )
    first = follow_up(serious_event, narrative="Discharged on 2 November.")
    reassess(
        serious_event,
        world.bob,
        ongoing=False,
        end_date=date(2026, 11, 2),
        outcome="recovered",
        relatedness="possible",
    )
    second = follow_up(serious_event)

    assert (first.number, second.number) == (1, 2)
    assert first.changes == [
        {"field": "end_date", "old": None, "new": "2026-11-02"},
        {"field": "ongoing", "old": True, "new": False},
        {"field": "outcome", "old": "recovering", "new": "recovered"},
    ]
    # Against the first follow-up, not against the initial report.
    assert second.changes == [{"field": "relatedness", "old": "not_related", "new": "possible"}]
    assert second.snapshot["relatedness"] == "possible"
    assert (second.submitted_by, second.narrative) == (world.alice, "")
    assert second.due_at - second.aware_at == first.due_at - first.aware_at

    subjects = list(
        OutboundEmail.objects.order_by("created_at", "pk").values_list("subject", flat=True)
    )
    code = serious_event.patient.subject_code
    assert subjects == [
        f"[NCT00479934] Initial SAE report: {code} AE-001 Pneumonia",
        f"[NCT00479934] SAE follow-up report 1: {code} AE-001 Pneumonia",
        f"[NCT00479934] SAE follow-up report 2: {code} AE-001 Pneumonia",
    ]
    assert sorted(m.subject for m in mailoutbox) == sorted(subjects)
    assert SaeNotification.objects.filter(report__in=[first, second]).count() == 2
    body = OutboundEmail.objects.get(subject__contains="follow-up report 1").body
    # The sponsor reads the form's labels and answers, not column names and codes.
    changes = body.split("Changes since the previous report:\n")[1].split("\n\n")[0]
    assert changes.splitlines() == [
        "- end date: — -> 2026-11-02",
        "- ongoing: yes -> no",
        "- outcome: Recovering/resolving -> Recovered/resolved",
    ]
    assert "Discharged on 2 November." in body


def test_follow_up_with_news_in_the_narrative_only_is_accepted(
    world, serious_event, submit, follow_up
):
    submit(serious_event.sae_reports.get())
    report = follow_up(serious_event, narrative="Blood cultures negative.")
    assert (report.number, report.changes) == (1, [])


def test_follow_up_with_nothing_new_is_refused(world, serious_event, submit, follow_up):
    submit(serious_event.sae_reports.get())
    with pytest.raises(ValidationError) as excinfo:
        follow_up(serious_event, narrative="   ")
    assert set(excinfo.value.message_dict) == {"narrative"}
    assert SaeReport.objects.count() == 1
    assert OutboundEmail.objects.count() == 1


def test_follow_up_before_the_initial_report_is_refused(world, serious_event, follow_up):
    with pytest.raises(ValidationError, match="initial report before a follow-up"):
        follow_up(serious_event, narrative="News.")
    assert SaeReport.objects.count() == 1
    assert not OutboundEmail.objects.exists()


def test_follow_up_of_a_non_serious_event_is_refused(world, patient, follow_up):
    event = ae_create(patient=patient, by=world.alice, values=ae_values())
    with pytest.raises(ValidationError, match="serious adverse event only"):
        follow_up(event, narrative="News.")
    assert not SaeReport.objects.exists()


def test_follow_up_needs_the_password(world, serious_event, submit, follow_up):
    submit(serious_event.sae_reports.get())
    with pytest.raises(ValidationError) as excinfo:
        follow_up(serious_event, narrative="News.", password="wrong")
    assert set(excinfo.value.message_dict) == {"password"}
    assert SaeReport.objects.count() == 1


def test_coordinator_cannot_send_a_follow_up(world, serious_event, submit, follow_up):
    submit(serious_event.sae_reports.get())
    with pytest.raises(PermissionDenied):
        follow_up(serious_event, narrative="News.", by=world.bob)
    assert SaeReport.objects.count() == 1


def test_follow_up_awareness_in_the_future_or_before_the_previous_report_is_refused(
    world, serious_event, submit, follow_up
):
    submit(serious_event.sae_reports.get())
    for aware_at in (timezone.now() + timedelta(hours=1), at(2026, 10, 21, 7, 0)):
        with pytest.raises(ValidationError) as excinfo:
            follow_up(serious_event, narrative="News.", aware_at=aware_at)
        assert set(excinfo.value.message_dict) == {"aware_at"}
    assert SaeReport.objects.count() == 1


def test_follow_up_deadline_runs_from_the_new_information(world, serious_event, submit, follow_up):
    submit(serious_event.sae_reports.get())
    report = follow_up(serious_event, narrative="News.", aware_at=at(2026, 11, 1, 10, 0))
    assert (report.aware_at, report.due_at) == (at(2026, 11, 1, 10, 0), at(2026, 11, 2, 10, 0))


def test_subject_stays_one_header_line_whatever_the_term(world, serious_event, submit, mailoutbox):
    # A term written before the one-line rule, or by another path than the service.
    type(serious_event).objects.filter(pk=serious_event.pk).update(
        term="Pneumonia\r\nBcc: someone@example.org"
    )
    submit(serious_event.sae_reports.get())
    (message,) = mailoutbox
    code = serious_event.patient.subject_code
    assert message.subject == (
        f"[NCT00479934] Initial SAE report: {code} AE-001 Pneumonia Bcc: someone@example.org"
    )
    assert message.bcc == []
    assert OutboundEmail.objects.get().status == "sent"


def test_database_refuses_an_unsubmitted_follow_up(world, serious_event):
    initial = serious_event.sae_reports.get()
    with pytest.raises(IntegrityError, match="sae_follow_up_is_submitted"), transaction.atomic():
        SaeReport.objects.create(
            adverse_event=serious_event, number=1, aware_at=initial.aware_at, due_at=initial.due_at
        )
