"""Changing a visit's date: a reason for change like any other change, a deviation that
follows the date (updated, or closed when the new date is inside the window, its history
kept), deviation categories that fit a visit that took place, and reasons long enough to
be read later by someone who was not there."""

from __future__ import annotations

from datetime import timedelta

import pghistory.models
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation
from django.utils.formats import date_format

from ecrf.core.reasons import MIN_REASON_LENGTH, reason_problem
from ecrf.crfs.models import Dlqi
from ecrf.patients.models import Allocation, Deviation, Patient, Visit
from ecrf.patients.randomisation import allocation_list_generate
from ecrf.patients.visits import visit_mark_missed, visit_record_date
from tests.clock import TODAY
from tests.factories import MembershipFactory, UserFactory
from tests.walks.helpers import (
    date_visit,
    dlqi_data,
    enrol,
    fill,
    rct_m0,
    rct_pre_inclusion,
    saved,
    screen,
    visit_url,
)

pytestmark = pytest.mark.django_db

DAY0 = TODAY - timedelta(days=130)
SCR_DAY = DAY0 - timedelta(days=15)
M1_TARGET = DAY0 + timedelta(days=30)  # window ±7 days
LATE_BY_3 = M1_TARGET + timedelta(days=10)
HOLIDAY = "Patient on holiday during the window"


@pytest.fixture
def client(client, world):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.force_login(world.alice)
    return client


@pytest.fixture
def enrolled(client, world) -> Patient:
    """Enrolled on DAY0 with M0 complete: M1 can be dated."""
    keeper = UserFactory(username="keeper")
    MembershipFactory(user=keeper, study=world.rct, role="data_manager", unblinded=True)
    allocation_list_generate(study=world.rct, site=world.bxp, size=4, seed=5, by=keeper)
    patient = screen(client, world.rct, site="BXP", screening_date=SCR_DAY)
    rct_pre_inclusion(client, patient, SCR_DAY)
    enrol(client, patient, DAY0)
    rct_m0(client, patient, DAY0, Allocation.objects.get(patient=patient).kit_number)
    return patient


def m1(patient: Patient) -> Visit:
    return patient.visits.get(code="M1")


def errors_of(response) -> dict[str, str]:
    assert response.status_code == 200, response.status_code
    return {k: " ".join(v) for k, v in response.context["date_form"].errors.items()}


def events(instance):
    return pghistory.models.Events.objects.tracks(instance).order_by("pgh_id")


def late_m1(client, patient: Patient) -> Deviation:
    saved(
        date_visit(
            client,
            patient,
            "M1",
            LATE_BY_3,
            deviation_category="out_of_window",
            deviation_reason=HOLIDAY,
        )
    )
    return Deviation.objects.get(visit=m1(patient))


def test_redated_inside_its_window_the_deviation_is_closed_and_no_longer_shown(
    client, world, enrolled
):
    deviation = late_m1(client, enrolled)
    assert deviation.days_outside == 3

    saved(
        date_visit(
            client, enrolled, "M1", M1_TARGET, change_reason="Date copied from the wrong letter"
        )
    )
    assert m1(enrolled).visit_date == M1_TARGET
    deviation.refresh_from_db()  # kept, closed: when, by whom, why
    assert deviation.closed_at is not None
    assert deviation.closed_by == world.alice
    assert deviation.close_reason == "Date copied from the wrong letter"
    assert list(Deviation.objects.filter(visit=m1(enrolled)).open()) == []

    # Neither the visit page nor the casebook shows it; the audit trail keeps both states.
    page = client.get(visit_url(enrolled, "M1"))
    assert page.context["deviations"] == []
    assert HOLIDAY not in page.content.decode()
    casebook = client.get(
        reverse("patients:detail", args=[enrolled.study.code, enrolled.subject_code])
    )
    assert list(casebook.context["deviations"]) == []
    assert HOLIDAY not in casebook.content.decode()
    created, closed = events(deviation)
    assert (created.pgh_label, created.pgh_context["reason"]) == ("insert", HOLIDAY)
    assert closed.pgh_context["reason"] == "Date copied from the wrong letter"
    assert closed.pgh_data["close_reason"] == "Date copied from the wrong letter"


def test_redated_still_outside_the_deviation_follows_the_new_date(client, enrolled):
    deviation = late_m1(client, enrolled)
    # The page offers the standing deviation, so re-dating does not mean retyping it.
    form = client.get(visit_url(enrolled, "M1")).context["date_form"]
    assert (form["deviation_category"].value(), form["deviation_reason"].value()) == (
        "out_of_window",
        HOLIDAY,
    )
    day = M1_TARGET + timedelta(days=9)
    saved(date_visit(client, enrolled, "M1", day, change_reason="Seen a day earlier, per chart"))

    deviation.refresh_from_db()
    assert (deviation.days_outside, deviation.reason, deviation.closed_at) == (2, HOLIDAY, None)
    assert Deviation.objects.filter(visit=m1(enrolled)).count() == 1
    assert "(+2 d)" in client.get(visit_url(enrolled, "M1")).content.decode()

    # Then early: the same deviation, now negative, with the new reason given.
    day = M1_TARGET - timedelta(days=8)
    saved(
        date_visit(
            client,
            enrolled,
            "M1",
            day,
            deviation_category="out_of_window",
            deviation_reason="Patient leaves for the summer, seen early",
            change_reason="Date confirmed with the patient",
        )
    )
    deviation.refresh_from_db()
    assert (deviation.days_outside, deviation.reason) == (
        -1,
        "Patient leaves for the summer, seen early",
    )


def test_a_date_change_needs_a_reason_kept_in_the_audit_trail(client, world, enrolled):
    # The first dating changes nothing: no reason for change is asked.
    assert "change_reason" not in client.get(visit_url(enrolled, "M1")).context["date_form"].fields
    saved(date_visit(client, enrolled, "M1", M1_TARGET))
    assert "change_reason" in client.get(visit_url(enrolled, "M1")).context["date_form"].fields
    version = m1(enrolled).version

    day = M1_TARGET + timedelta(days=2)
    errors = errors_of(date_visit(client, enrolled, "M1", day))
    with translation.override("en"):
        was = date_format(M1_TARGET, "SHORT_DATE_FORMAT")
    assert errors["change_reason"] == (
        f"Give the reason for changing the date (it was {was}): every change to a dated "
        "visit is kept in the audit trail with its reason."
    )
    errors = errors_of(date_visit(client, enrolled, "M1", day, change_reason="typo"))
    assert errors["change_reason"] == (
        f"Reason for change: give at least {MIN_REASON_LENGTH} characters."
    )
    assert (m1(enrolled).visit_date, m1(enrolled).version) == (M1_TARGET, version)

    saved(date_visit(client, enrolled, "M1", day, change_reason="Wrong day typed at first"))
    visit = m1(enrolled)
    assert (visit.visit_date, visit.version) == (day, version + 1)
    event = events(visit).last()
    assert event.pgh_context["reason"] == "Wrong day typed at first"
    assert event.pgh_context["user"] == world.alice.pk
    assert event.pgh_diff["visit_date"] == [M1_TARGET.isoformat(), day.isoformat()]

    # The same date again is no change: nothing written, nothing asked.
    before = events(visit).count()
    saved(date_visit(client, enrolled, "M1", day))
    assert (events(visit).count(), m1(enrolled).version) == (before, version + 1)


def test_dating_offers_timing_categories_never_missed_visit(client, world, enrolled):
    form = client.get(visit_url(enrolled, "M1")).context["date_form"]
    offered = [value for value, _ in form.fields["deviation_category"].choices if value]
    assert offered == ["out_of_window"]

    response = date_visit(
        client,
        enrolled,
        "M1",
        LATE_BY_3,
        deviation_category="missed_visit",
        deviation_reason=HOLIDAY,
    )
    assert "deviation_category" in errors_of(response)
    with pytest.raises(ValidationError) as refused:
        visit_record_date(
            visit=m1(enrolled),
            by=world.alice,
            visit_date=LATE_BY_3,
            deviation_category="missed_visit",
            deviation_reason=HOLIDAY,
        )
    assert "declared missed" in refused.value.message_dict["deviation_category"][0]
    assert (m1(enrolled).visit_date, Deviation.objects.count()) == (None, 0)


def test_reasons_have_a_minimum_length_naming_the_field(client, world, enrolled):
    response = date_visit(
        client, enrolled, "M1", LATE_BY_3, deviation_category="out_of_window", deviation_reason="x"
    )
    assert errors_of(response)["deviation_reason"] == (
        "Deviation reason: give at least 10 characters."
    )
    assert Deviation.objects.count() == 0

    response = client.post(visit_url(enrolled, "M1"), {"reason": "ill", "version": 1})
    assert response.status_code == 200
    assert response.context["missed_form"].errors["reason"] == [
        "Reason the visit was missed: give at least 10 characters."
    ]
    assert m1(enrolled).status == "planned"

    # The CRF reason for change too.
    response = fill(client, enrolled, "M0", "dlqi", dlqi_data("a_lot"), reason="typo")
    assert response.context["form"].errors["reason"] == [
        "Reason for change: give at least 10 characters."
    ]
    assert Dlqi.objects.get(patient=enrolled).version == 1
    saved(fill(client, enrolled, "M0", "dlqi", dlqi_data("a_lot"), reason="Answer re-read"))

    visit_mark_missed(visit=m1(enrolled), by=world.alice, reason="Hospitalised elsewhere")
    assert m1(enrolled).status == "missed"


def test_reason_length_counts_words_not_padding():
    assert reason_problem("Re-read OK", label="Reason") is None  # exactly 10
    assert reason_problem("  typo        x  ", label="Reason") == (
        "Reason: give at least 10 characters."
    )


def test_a_visit_cannot_be_redated_after_the_next_visit(world, enrolled):
    visit_record_date(visit=m1(enrolled), by=world.alice, visit_date=M1_TARGET)
    m3_day = M1_TARGET + timedelta(days=55)
    Visit.objects.filter(patient=enrolled, code="M3").update(visit_date=m3_day)
    with pytest.raises(ValidationError) as refused:
        visit_record_date(
            visit=m1(enrolled),
            by=world.alice,
            visit_date=m3_day + timedelta(days=1),
            deviation_category="out_of_window",
            deviation_reason=HOLIDAY,
            change_reason="Date of the wrong visit",
        )
    assert "after the next visit M3" in " ".join(refused.value.message_dict["visit_date"])
    assert m1(enrolled).visit_date == M1_TARGET


def test_the_form_page_of_an_undated_visit_says_to_date_it_first(client, enrolled):
    response = client.get(reverse("crfs:form", args=[*m1_args(enrolled), "dlqi"]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Visit M1 is not dated yet" in body
    assert f'href="{visit_url(enrolled, "M1")}"' in body
    assert "Date visit M1" in body
    assert "form" not in response.context  # no form to type into and lose
    # The visit page offers no form link before the date.
    page = client.get(visit_url(enrolled, "M1")).content.decode()
    assert reverse("crfs:form", args=[*m1_args(enrolled), "dlqi"]) not in page

    saved(date_visit(client, enrolled, "M1", M1_TARGET))
    response = client.get(reverse("crfs:form", args=[*m1_args(enrolled), "dlqi"]))
    assert "form" in response.context
    assert (
        reverse("crfs:form", args=[*m1_args(enrolled), "dlqi"])
        in client.get(visit_url(enrolled, "M1")).content.decode()
    )


def m1_args(patient: Patient) -> list:
    return [patient.study.code, patient.subject_code, "M1", 1]
