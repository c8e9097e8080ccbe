"""The investigator's SAE clock: 24 hours from awareness, exact across daylight saving."""

from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from ecrf.core.errors import StaleVersion
from ecrf.safety.clock import duration_label, local_instant, partial_date_bounds, sae_due_at
from ecrf.safety.models import AdverseEvent, SaeReport
from ecrf.safety.services import ae_create, ae_update, sae_submit_initial
from tests.safety.conftest import ae_values, at, sae_values

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")


def test_serious_event_opens_one_pending_initial_report_due_24_h_after_awareness(
    world, serious_event
):
    (report,) = SaeReport.objects.filter(adverse_event=serious_event)
    assert report.number == 0
    assert report.is_initial
    assert report.submitted_at is None
    assert report.aware_at == at(2026, 10, 21, 7, 30)
    assert report.due_at == at(2026, 10, 22, 7, 30)


def test_non_serious_event_has_no_report(world, patient):
    ae_create(patient=patient, by=world.alice, values=ae_values())
    assert not SaeReport.objects.exists()


def test_deadline_across_the_autumn_change_is_24_hours_not_the_same_wall_clock_hour(world, patient):
    # Aware on Saturday 24 October 2026 at 10:00 in Bordeaux (summer time, UTC+2); the
    # clocks go back that night, so 24 hours later it is 09:00 on the Sunday (UTC+1).
    aware = local_instant(date(2026, 10, 24), time(10, 0), "Europe/Paris")
    assert aware == at(2026, 10, 24, 8, 0)
    event = ae_create(
        patient=patient,
        by=world.alice,
        values=sae_values(onset_date="2026-10-24", aware_at=aware),
    )
    report = event.sae_reports.get()
    assert report.due_at == at(2026, 10, 25, 8, 0)
    assert report.due_at - report.aware_at == timedelta(hours=24)
    local_due = report.due_at.astimezone(PARIS)
    assert (local_due.date(), local_due.hour, local_due.utcoffset()) == (
        date(2026, 10, 25),
        9,
        timedelta(hours=1),
    )


def test_deadline_across_the_spring_change_ends_an_hour_later_on_the_wall_clock():
    aware = local_instant(date(2026, 3, 28), time(10, 0), "Europe/Paris")
    due = sae_due_at(aware, 24).astimezone(PARIS)
    assert (due.date(), due.hour) == (date(2026, 3, 29), 11)


def test_local_time_skipped_by_the_spring_change_is_refused():
    with pytest.raises(ValueError, match="2026-03-29 02:30 does not exist in Europe/Paris"):
        local_instant(date(2026, 3, 29), time(2, 30), "Europe/Paris")
    # Either side of the gap is a real instant.
    assert local_instant(date(2026, 3, 29), time(1, 59), "Europe/Paris") == at(2026, 3, 29, 0, 59)
    assert local_instant(date(2026, 3, 29), time(3, 0), "Europe/Paris") == at(2026, 3, 29, 1, 0)


def test_local_time_repeated_by_the_autumn_change_is_its_first_occurrence():
    # 02:30 happens at 00:30 UTC (summer time) and again at 01:30 UTC: the earlier is taken.
    assert local_instant(date(2026, 10, 25), time(2, 30), "Europe/Paris") == at(2026, 10, 25, 0, 30)
    assert local_instant(date(2026, 10, 25), time(3, 30), "Europe/Paris") == at(2026, 10, 25, 2, 30)


def test_site_time_zone_is_used_for_local_instants():
    assert local_instant(date(2026, 7, 1), time(9, 0), "America/Martinique") == at(
        2026, 7, 1, 13, 0
    )


def test_deadline_needs_an_aware_instant():
    with pytest.raises(ValueError, match="aware datetime"):
        sae_due_at(at(2026, 10, 1, 8, 0).replace(tzinfo=None), 24)


def test_partial_date_bounds_cover_the_month():
    assert partial_date_bounds("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    assert partial_date_bounds("2028-02") == (date(2028, 2, 1), date(2028, 2, 29))
    assert partial_date_bounds("2026-10-25") == (date(2026, 10, 25), date(2026, 10, 25))


def test_duration_label_reads_as_time_left_or_late():
    assert duration_label(timedelta(hours=3, minutes=5)) == "3 h 05 min"
    assert duration_label(timedelta(days=2, hours=4, minutes=59)) == "2 d 4 h"
    assert duration_label(-timedelta(hours=1, minutes=10)) == "-1 h 10 min"
    assert duration_label(timedelta(days=1, hours=2), day="j") == "1 j 2 h"


# -- the pending report follows the event until it is submitted ------------------------------


def update(event, by, **changes):
    return ae_update(
        event=event,
        by=by,
        values=sae_values(**changes),
        expected_version=event.version,
        reason="source document checked",
    )


def test_earlier_awareness_before_submission_moves_the_deadline(world, serious_event):
    update(serious_event, world.alice, aware_at=at(2026, 10, 20, 18, 0))
    report = serious_event.sae_reports.get()
    assert (report.aware_at, report.due_at) == (at(2026, 10, 20, 18, 0), at(2026, 10, 21, 18, 0))


def test_downgrade_before_submission_removes_the_pending_report(world, serious_event):
    update(serious_event, world.alice, serious=False, sae_hospitalisation=False)
    serious_event.refresh_from_db()
    assert serious_event.serious is False
    assert not SaeReport.objects.exists()


def test_upgrade_to_serious_opens_the_report_from_the_awareness_of_seriousness(world, patient):
    # Known on 2 October, found serious on 4 October: due on the 5th, not on the 3rd.
    event = ae_create(patient=patient, by=world.alice, values=ae_values())
    ae_update(
        event=event,
        by=world.alice,
        values=ae_values(
            serious=True,
            sae_important_medical_event=True,
            serious_aware_at=at(2026, 10, 4, 10, 0),
        ),
        expected_version=1,
        reason="reassessed as an important medical event",
    )
    report = event.sae_reports.get()
    assert (report.number, report.aware_at, report.due_at) == (
        0,
        at(2026, 10, 4, 10, 0),
        at(2026, 10, 5, 10, 0),
    )
    event.refresh_from_db()
    assert event.aware_at == at(2026, 10, 2, 9, 0)


def test_downgrade_after_submission_is_refused(world, serious_event, password):
    sae_submit_initial(report=serious_event.sae_reports.get(), by=world.alice, password=password)
    with pytest.raises(ValidationError) as excinfo:
        update(serious_event, world.alice, serious=False, sae_hospitalisation=False)
    assert set(excinfo.value.message_dict) == {"serious"}
    assert "follow-up" in excinfo.value.message_dict["serious"][0]
    event = AdverseEvent.objects.get(pk=serious_event.pk)
    assert (event.serious, event.sae_hospitalisation, event.version) == (True, True, 1)
    assert event.sae_reports.get().submitted_at is not None


def test_awareness_change_after_submission_leaves_the_submitted_deadline(
    world, serious_event, password
):
    sae_submit_initial(report=serious_event.sae_reports.get(), by=world.alice, password=password)
    update(serious_event, world.alice, aware_at=at(2026, 10, 21, 6, 0))
    report = serious_event.sae_reports.get()
    assert (report.aware_at, report.due_at) == (at(2026, 10, 21, 7, 30), at(2026, 10, 22, 7, 30))


def test_submitting_a_report_removed_by_a_downgrade_is_refused(world, serious_event, password):
    report = serious_event.sae_reports.get()
    update(serious_event, world.alice, serious=False, sae_hospitalisation=False)
    with pytest.raises(ValidationError, match="not serious any more"):
        sae_submit_initial(report=report, by=world.alice, password=password)


def test_change_needs_a_reason(world, serious_event):
    with pytest.raises(ValidationError) as excinfo:
        ae_update(
            event=serious_event,
            by=world.alice,
            values=sae_values(ctcae_grade=4),
            expected_version=1,
            reason="  ",
        )
    assert set(excinfo.value.message_dict) == {"reason"}
    serious_event.refresh_from_db()
    assert (serious_event.ctcae_grade, serious_event.version) == (3, 1)


def test_change_based_on_a_stale_version_is_refused(world, serious_event):
    update(serious_event, world.bob, ctcae_grade=4)
    with pytest.raises(StaleVersion):
        ae_update(
            event=serious_event,
            by=world.alice,
            values=sae_values(ctcae_grade=2),
            expected_version=1,
            reason="typo",
        )
    serious_event.refresh_from_db()
    assert (serious_event.ctcae_grade, serious_event.version) == (4, 2)


def test_only_site_staff_change_an_event(world, serious_event):
    for persona in (world.monica, world.charlie, world.diane):
        with pytest.raises(PermissionDenied):
            update(serious_event, persona, ctcae_grade=4)
    serious_event.refresh_from_db()
    assert serious_event.ctcae_grade == 3
