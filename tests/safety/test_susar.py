"""SUSARs: serious, related (either opinion), unexpected; the sponsor's 7- or 15-day clock."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from ecrf.safety.clock import susar_clock
from ecrf.safety.models import AdverseEvent
from ecrf.safety.selectors import initial_reports_for, sae_rows
from ecrf.safety.services import (
    ae_authority_reported,
    ae_create,
    sae_acknowledge,
    sae_submit_initial,
)
from tests.safety.conftest import at, sae_values

pytestmark = pytest.mark.django_db


def record(world, patient, **changes) -> AdverseEvent:
    return ae_create(patient=patient, by=world.alice, values=sae_values(**changes))


def submitted(world, event, password):
    return sae_submit_initial(report=event.sae_reports.get(), by=world.alice, password=password)


@pytest.mark.parametrize(
    "changes, susar",
    [
        ({"relatedness": "possible", "expected": False}, True),
        ({"relatedness": "probable", "expected": False}, True),
        ({"relatedness": "definite", "expected": False}, True),
        ({"relatedness": "unlikely", "expected": False}, False),
        ({"relatedness": "not_related", "expected": False}, False),
        ({"relatedness": "definite", "expected": True}, False),
        (
            {
                "relatedness": "definite",
                "expected": False,
                "serious": False,
                "sae_hospitalisation": False,
            },
            False,
        ),
    ],
)
def test_susar_is_serious_related_and_unexpected(world, patient, changes, susar):
    assert record(world, patient, **changes).susar is susar


def test_sponsors_probable_makes_an_investigators_unlikely_event_related(world, patient, password):
    event = record(world, patient, relatedness="unlikely", expected=False)
    assert (event.related, event.susar) == (False, False)
    report = submitted(world, event, password)
    sae_acknowledge(report=report, by=world.diane, sponsor_relatedness="probable")
    event.refresh_from_db()
    # Both opinions are kept; the event is reported as related.
    assert (event.relatedness, event.sponsor_relatedness) == ("unlikely", "probable")
    assert (event.related, event.susar) == (True, True)


def test_sponsors_unlikely_does_not_overrule_an_investigators_possible(world, patient, password):
    event = record(world, patient, relatedness="possible", expected=False)
    sae_acknowledge(
        report=submitted(world, event, password), by=world.diane, sponsor_relatedness="unlikely"
    )
    event.refresh_from_db()
    assert (event.related, event.susar) == (True, True)


def test_unknown_sponsor_relatedness_is_refused(world, serious_event, password):
    report = submitted(world, serious_event, password)
    with pytest.raises(ValidationError) as excinfo:
        sae_acknowledge(report=report, by=world.diane, sponsor_relatedness="likely")
    assert set(excinfo.value.message_dict) == {"sponsor_relatedness"}
    report.refresh_from_db()
    assert report.acknowledged_at is None


def the_row(world, now=None):
    (row,) = sae_rows(initial_reports_for(world.diane, study=world.rct), now=now)
    return row


FATAL = {
    "sae_death": True,
    "ctcae_grade": 5,
    "outcome": "fatal",
    "death_date": date(2026, 10, 22),
    "ongoing": False,
    "end_date": date(2026, 10, 22),
}


@pytest.mark.parametrize(
    "criterion", [{"sae_life_threatening": True}, FATAL], ids=["life-threatening", "fatal"]
)
def test_fatal_or_life_threatening_susar_is_due_in_7_days_complete_in_8_more(
    world, patient, password, criterion
):
    event = record(world, patient, relatedness="possible", expected=False, **criterion)
    report = submitted(world, event, password)
    before = timezone.now()
    sae_acknowledge(report=report, by=world.diane)
    report.refresh_from_db()
    assert before <= report.acknowledged_at <= timezone.now()
    assert report.acknowledged_by == world.diane

    clock = the_row(world).susar
    assert clock.days == 7
    assert clock.start == report.acknowledged_at
    assert clock.due == report.acknowledged_at + timedelta(days=7)
    assert clock.complete_due == report.acknowledged_at + timedelta(days=15)


def test_other_susar_is_due_in_15_days(world, patient, password):
    event = record(world, patient, relatedness="probable", expected=False)
    report = submitted(world, event, password)
    sae_acknowledge(report=report, by=world.diane)
    report.refresh_from_db()
    clock = the_row(world).susar
    assert (clock.days, clock.due, clock.complete_due) == (
        15,
        report.acknowledged_at + timedelta(days=15),
        None,
    )


def test_no_susar_clock_before_the_sponsor_acknowledges(world, patient, password):
    event = record(world, patient, relatedness="probable", expected=False)
    submitted(world, event, password)
    assert the_row(world).susar is None


def test_no_susar_clock_for_an_expected_event(world, patient, password):
    event = record(world, patient, relatedness="probable", expected=True)
    sae_acknowledge(report=submitted(world, event, password), by=world.diane)
    assert the_row(world).susar is None


def test_susar_clock_counts_calendar_days_from_first_knowledge():
    start = at(2026, 10, 20, 23, 0)
    assert susar_clock(first_knowledge=start, fatal_or_life_threatening=False).due == at(
        2026, 11, 4, 23, 0
    )
    fast = susar_clock(first_knowledge=start, fatal_or_life_threatening=True)
    assert (fast.due, fast.complete_due) == (at(2026, 10, 27, 23, 0), at(2026, 11, 4, 23, 0))
    assert fast.overdue(at(2026, 10, 28, 0, 0))
    assert not fast.overdue(at(2026, 10, 28, 0, 0), reported_at=at(2026, 10, 26, 9, 0))


@pytest.mark.parametrize("persona", ["alice", "bob", "monica", "charlie"])
def test_only_the_sponsors_data_managers_acknowledge(world, serious_event, password, persona):
    report = submitted(world, serious_event, password)
    with pytest.raises(PermissionDenied):
        sae_acknowledge(report=report, by=getattr(world, persona), sponsor_relatedness="definite")
    report.refresh_from_db()
    serious_event.refresh_from_db()
    assert (report.acknowledged_at, serious_event.sponsor_relatedness) == (None, "")


def test_acknowledging_an_unsubmitted_report_is_refused(world, serious_event):
    with pytest.raises(ValidationError, match="not been submitted"):
        sae_acknowledge(report=serious_event.sae_reports.get(), by=world.diane)


def test_acknowledging_twice_is_refused(world, serious_event, password):
    report = submitted(world, serious_event, password)
    sae_acknowledge(report=report, by=world.diane)
    first = type(report).objects.get(pk=report.pk).acknowledged_at
    with pytest.raises(ValidationError, match="already acknowledged"):
        sae_acknowledge(report=report, by=world.diane)
    report.refresh_from_db()
    assert report.acknowledged_at == first


# -- reported to the authorities --------------------------------------------------------------


@pytest.fixture
def acknowledged_susar(world, patient, password):
    event = record(world, patient, relatedness="definite", expected=False)
    report = sae_acknowledge(report=submitted(world, event, password), by=world.diane)
    return event, report


def test_authority_report_stops_the_susar_clock(world, acknowledged_susar):
    event, report = acknowledged_susar
    reported = timezone.now()
    ae_authority_reported(event=event, by=world.diane, at=reported)
    event.refresh_from_db()
    assert event.authority_reported_at == reported
    row = the_row(world, now=report.acknowledged_at + timedelta(days=30))
    assert row.susar_overdue is False


def test_unreported_susar_is_overdue_after_15_days(world, acknowledged_susar):
    _, report = acknowledged_susar
    assert the_row(world, now=report.acknowledged_at + timedelta(days=15)).susar_overdue is False
    late = report.acknowledged_at + timedelta(days=15, seconds=1)
    assert the_row(world, now=late).susar_overdue is True


@pytest.mark.parametrize(
    "offset", [-timedelta(seconds=1), None], ids=["before-acknowledgement", "in-the-future"]
)
def test_authority_report_outside_acknowledgement_and_now_is_refused(
    world, acknowledged_susar, offset
):
    event, report = acknowledged_susar
    when = report.acknowledged_at + offset if offset else timezone.now() + timedelta(minutes=5)
    with pytest.raises(ValidationError) as excinfo:
        ae_authority_reported(event=event, by=world.diane, at=when)
    assert set(excinfo.value.message_dict) == {"at"}
    event.refresh_from_db()
    assert event.authority_reported_at is None


def test_authority_report_of_an_event_that_is_not_a_susar_is_refused(
    world, serious_event, password
):
    sae_acknowledge(report=submitted(world, serious_event, password), by=world.diane)
    with pytest.raises(ValidationError, match="acknowledged SUSAR"):
        ae_authority_reported(event=serious_event, by=world.diane, at=timezone.now())


def test_authority_report_before_acknowledgement_is_refused(world, patient, password):
    event = record(world, patient, relatedness="definite", expected=False)
    submitted(world, event, password)
    with pytest.raises(ValidationError, match="acknowledged SUSAR"):
        ae_authority_reported(event=event, by=world.diane, at=timezone.now())


def test_only_data_managers_record_the_authority_report(world, acknowledged_susar):
    event, _ = acknowledged_susar
    with pytest.raises(PermissionDenied):
        ae_authority_reported(event=event, by=world.alice, at=timezone.now())
