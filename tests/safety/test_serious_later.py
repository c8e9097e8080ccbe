"""An adverse event that becomes serious later: the SAE clock starts when the site became
aware of the seriousness (`serious_aware_at`), not when it learned of the event."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pghistory.models
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from ecrf.notifications.models import OutboundEmail
from ecrf.safety.models import AdverseEvent, SaeReport
from ecrf.safety.selectors import adverse_events_for, initial_reports_for, sae_rows
from ecrf.safety.services import ae_create, ae_update, sae_follow_up, sae_submit_initial
from tests.safety.conftest import ae_values, at, sae_values

pytestmark = pytest.mark.django_db

SERIOUS = {"serious": True, "sae_hospitalisation": True, "ctcae_grade": 3}


def recent(**overrides) -> dict:
    """A non-serious, ongoing event the site learned of five days ago."""
    now = timezone.now()
    values = ae_values(
        onset_date=timezone.localdate(now - timedelta(days=6)).isoformat(),
        end_date=None,
        ongoing=True,
        outcome="recovering",
        aware_at=now - timedelta(days=5),
    )
    values.update(overrides)
    return values


def change(event, by, values, reason="hospitalised: reassessed as serious"):
    event.refresh_from_db()
    return ae_update(
        event=event, by=by, values=values, expected_version=event.version, reason=reason
    )


def refused(event, by, values) -> dict[str, list[str]]:
    event.refresh_from_db()
    before = (event.version, SaeReport.objects.count())
    with pytest.raises(ValidationError) as excinfo:
        change(event, by, values)
    event.refresh_from_db()
    assert (event.version, SaeReport.objects.count()) == before
    return excinfo.value.message_dict


# -- turning serious later -------------------------------------------------------------------


def test_event_known_five_days_ago_turned_serious_now_is_not_overdue(world, patient):
    event = ae_create(patient=patient, by=world.alice, values=recent())
    aware = event.aware_at
    serious_aware = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=30)
    change(event, world.alice, recent(aware_at=aware, serious_aware_at=serious_aware, **SERIOUS))

    (row,) = sae_rows(initial_reports_for(world.diane, study=patient.study))
    assert not row.overdue
    assert timedelta(hours=23) < row.time_left <= timedelta(hours=23, minutes=30)
    report = event.sae_reports.get()
    assert (report.number, report.aware_at) == (0, serious_aware)
    assert report.due_at == serious_aware + timedelta(hours=24)
    listed = adverse_events_for(world.diane, study=patient.study).get(pk=event.pk)
    assert listed.initial_due_at == serious_aware + timedelta(hours=24)
    event.refresh_from_db()
    assert event.aware_at == aware  # the event's awareness stays as it was
    assert event.serious_aware_at == serious_aware


def test_turning_serious_needs_the_moment_the_site_became_aware_of_it(world, patient):
    event = ae_create(patient=patient, by=world.alice, values=recent())
    errors = refused(event, world.alice, recent(aware_at=event.aware_at, **SERIOUS))
    assert errors == {
        "serious_aware_at": [
            "Give the date and time the site became aware that the event is serious."
        ]
    }
    assert AdverseEvent.objects.get(pk=event.pk).serious is False


def test_awareness_of_seriousness_cannot_precede_awareness_of_the_event(world, patient):
    event = ae_create(patient=patient, by=world.alice, values=recent())
    before = event.aware_at - timedelta(minutes=1)
    errors = refused(
        event, world.alice, recent(aware_at=event.aware_at, serious_aware_at=before, **SERIOUS)
    )
    assert set(errors) == {"serious_aware_at"}
    local = timezone.localtime(event.aware_at, timezone=ZoneInfo(patient.site.timezone))
    (message,) = errors["serious_aware_at"]
    assert message == (
        "The site cannot have become aware that the event is serious before it became "
        f"aware of the event ({local:%Y-%m-%d %H:%M}, site time)."
    )


def test_awareness_of_seriousness_cannot_be_in_the_future(world, patient):
    event = ae_create(patient=patient, by=world.alice, values=recent())
    later = timezone.now() + timedelta(hours=1)
    errors = refused(
        event, world.alice, recent(aware_at=event.aware_at, serious_aware_at=later, **SERIOUS)
    )
    assert errors == {
        "serious_aware_at": [
            "The moment the site became aware that the event is serious cannot be in the future."
        ]
    }


def test_awareness_of_seriousness_needs_a_time_zone(world, patient):
    event = ae_create(patient=patient, by=world.alice, values=recent())
    naive = (timezone.now() - timedelta(hours=1)).replace(tzinfo=None)
    errors = refused(
        event, world.alice, recent(aware_at=event.aware_at, serious_aware_at=naive, **SERIOUS)
    )
    assert set(errors) == {"serious_aware_at"}


def test_awareness_of_seriousness_on_a_non_serious_event_is_refused(world, patient):
    with pytest.raises(ValidationError) as excinfo:
        ae_create(
            patient=patient,
            by=world.alice,
            values=ae_values(serious_aware_at=at(2026, 10, 3, 9, 0)),
        )
    assert excinfo.value.message_dict == {
        "serious_aware_at": [
            "A moment of awareness of seriousness is given but the event is not marked serious."
        ]
    }
    assert not AdverseEvent.objects.exists()


def test_the_same_moment_as_the_event_is_accepted_and_may_be_overdue(world, patient):
    # The site knew from the start and forgot to tick: the clock is the event's, and late.
    event = ae_create(patient=patient, by=world.alice, values=recent())
    change(
        event,
        world.alice,
        recent(aware_at=event.aware_at, serious_aware_at=event.aware_at, **SERIOUS),
    )
    (row,) = sae_rows(initial_reports_for(world.diane, study=patient.study))
    assert row.report.due_at == event.aware_at + timedelta(hours=24)
    assert row.overdue


# -- an event recorded serious ---------------------------------------------------------------


def test_event_recorded_serious_is_serious_from_its_awareness_by_default(world, serious_event):
    assert serious_event.serious_aware_at == serious_event.aware_at == at(2026, 10, 21, 7, 30)
    assert serious_event.sae_reports.get().due_at == at(2026, 10, 22, 7, 30)


def test_event_recorded_serious_may_say_it_became_serious_later(world, patient):
    event = ae_create(
        patient=patient, by=world.alice, values=sae_values(serious_aware_at=at(2026, 10, 22, 6, 0))
    )
    assert (event.aware_at, event.serious_aware_at) == (
        at(2026, 10, 21, 7, 30),
        at(2026, 10, 22, 6, 0),
    )
    report = event.sae_reports.get()
    assert (report.aware_at, report.due_at) == (at(2026, 10, 22, 6, 0), at(2026, 10, 23, 6, 0))


def test_event_recorded_serious_cannot_be_serious_before_it_was_known(world, patient):
    with pytest.raises(ValidationError) as excinfo:
        ae_create(
            patient=patient,
            by=world.alice,
            values=sae_values(serious_aware_at=at(2026, 10, 21, 7, 0)),
        )
    assert set(excinfo.value.message_dict) == {"serious_aware_at"}
    assert not AdverseEvent.objects.exists()


def test_correcting_the_awareness_of_seriousness_before_submission_moves_the_deadline(
    world, serious_event
):
    change(serious_event, world.alice, sae_values(serious_aware_at=at(2026, 10, 21, 20, 0)))
    report = serious_event.sae_reports.get()
    assert (report.aware_at, report.due_at) == (at(2026, 10, 21, 20, 0), at(2026, 10, 22, 20, 0))
    serious_event.refresh_from_db()
    assert serious_event.aware_at == at(2026, 10, 21, 7, 30)


def test_after_submission_the_submitted_deadline_stays_and_the_follow_up_lists_the_change(
    world, serious_event, password
):
    sae_submit_initial(report=serious_event.sae_reports.get(), by=world.alice, password=password)
    change(serious_event, world.alice, sae_values(serious_aware_at=at(2026, 10, 21, 9, 0)))
    initial = serious_event.sae_reports.get()
    assert (initial.aware_at, initial.due_at) == (at(2026, 10, 21, 7, 30), at(2026, 10, 22, 7, 30))
    follow_up = sae_follow_up(
        event=serious_event, by=world.alice, password=password, narrative="Corrected."
    )
    assert follow_up.changes == [
        {
            "field": "serious_aware_at",
            "old": "2026-10-21T07:30:00+00:00",
            "new": "2026-10-21T09:00:00+00:00",
        }
    ]


# -- serious, then not serious ---------------------------------------------------------------


def test_downgrade_before_submission_clears_the_awareness_of_seriousness_kept_in_the_audit(
    world, patient
):
    event = ae_create(patient=patient, by=world.alice, values=recent())
    first = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=2)
    change(event, world.alice, recent(aware_at=event.aware_at, serious_aware_at=first, **SERIOUS))
    change(event, world.alice, recent(aware_at=event.aware_at), reason="not hospitalised after all")

    event.refresh_from_db()
    assert (event.serious, event.serious_aware_at) == (False, None)
    assert not SaeReport.objects.exists()
    history = pghistory.models.Events.objects.tracks(event).order_by("pgh_id")
    values = [e.pgh_data["serious_aware_at"] for e in history]
    assert len(values) == 3 and values[0] is None and values[2] is None
    assert values[1] is not None  # the audit trail keeps the moment that was recorded

    # Serious again: the question is asked again, and the clock starts from the new answer.
    errors = refused(event, world.alice, recent(aware_at=event.aware_at, **SERIOUS))
    assert set(errors) == {"serious_aware_at"}
    again = first + timedelta(hours=1)
    change(event, world.alice, recent(aware_at=event.aware_at, serious_aware_at=again, **SERIOUS))
    assert event.sae_reports.get().due_at == again + timedelta(hours=24)


def test_downgrade_after_submission_is_refused_and_keeps_the_awareness(world, patient, password):
    event = ae_create(patient=patient, by=world.alice, values=recent())
    serious_aware = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=2)
    change(
        event,
        world.alice,
        recent(aware_at=event.aware_at, serious_aware_at=serious_aware, **SERIOUS),
    )
    sae_submit_initial(report=event.sae_reports.get(), by=world.alice, password=password)
    errors = refused(event, world.alice, recent(aware_at=event.aware_at))
    assert set(errors) == {"serious"}
    event.refresh_from_db()
    assert (event.serious, event.serious_aware_at) == (True, serious_aware)


def test_the_sponsors_email_gives_both_moments_of_awareness(
    world, patient, password, django_capture_on_commit_callbacks
):
    event = ae_create(
        patient=patient, by=world.alice, values=sae_values(serious_aware_at=at(2026, 10, 22, 6, 0))
    )
    with django_capture_on_commit_callbacks(execute=True):
        sae_submit_initial(report=event.sae_reports.get(), by=world.alice, password=password)
    lines = OutboundEmail.objects.get().body.splitlines()
    for line in (
        "Site aware of the event at: 2026-10-21 07:30 UTC (2026-10-21 09:30 CEST site time)",
        "Site aware of the seriousness at: 2026-10-22 06:00 UTC (2026-10-22 08:00 CEST site time)",
        "Report due at: 2026-10-23 06:00 UTC (2026-10-23 08:00 CEST site time)",
    ):
        assert line in lines
    with django_capture_on_commit_callbacks(execute=True):
        sae_follow_up(
            event=event,
            by=world.alice,
            password=password,
            narrative="Discharged.",
            aware_at=at(2026, 11, 2, 10, 0),
        )
    lines = OutboundEmail.objects.get(subject__contains="follow-up").body.splitlines()
    for line in (
        "Site aware of the seriousness at: 2026-10-22 06:00 UTC (2026-10-22 08:00 CEST site time)",
        "New information received at: 2026-11-02 10:00 UTC (2026-11-02 11:00 CET site time)",
        "Report due at: 2026-11-03 10:00 UTC (2026-11-03 11:00 CET site time)",
    ):
        assert line in lines
