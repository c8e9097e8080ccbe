"""The planned inclusion date of a patient in screening: what reminders before day 0 count from.

The site plans when inclusion (day 0) will be; the plan is kept once the patient is
enrolled, as the record of what was planned. It is written by a patient service (site
staff only, audited), bounded by the screening date and by the pre-inclusion visit's day
range in the protocol, and set from the patient page.
"""

from __future__ import annotations

from datetime import timedelta

import pghistory.models
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format

from ecrf.accounts.models import Membership
from ecrf.crfs.enrolment import patient_enrol
from ecrf.patients.models import Patient
from ecrf.patients.randomisation import allocation_list_generate
from ecrf.patients.services import patient_create, patient_plan_inclusion
from ecrf.patients.visits import visit_record_date
from tests.walks.helpers import rct_pre_inclusion, screen

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def screened(world):
    """A trial patient screened five days ago at Bordeaux."""
    return patient_create(
        study=world.rct,
        site=world.bxp,
        by=world.alice,
        screening_date=timezone.localdate() - timedelta(days=5),
    )


def screening_days(patient) -> int:
    """How many days before day 0 the pre-inclusion visit may be, as the protocol says."""
    return -patient.protocol_version.protocol.visit("SCR").day_range.min


def short(day, language: str = "en") -> str:
    """A date as the screens and messages give it in that language."""
    with translation.override(language):
        return date_format(day, "SHORT_DATE_FORMAT")


def patient_events(patient):
    return pghistory.models.Events.objects.filter(
        pgh_obj_model="patients.Patient", pgh_obj_id=str(patient.pk)
    ).order_by("pgh_id")


def plan_url(world, patient) -> str:
    return reverse("patients:plan_inclusion", args=[world.rct.code, patient.subject_code])


def detail_url(world, patient) -> str:
    return reverse("patients:detail", args=[world.rct.code, patient.subject_code])


def post_plan(client, world, patient, value: str) -> list[str]:
    """POST the planned date from the patient page; the messages the page then shows."""
    response = client.post(plan_url(world, patient), {"planned_day0_date": value}, follow=True)
    assert response.redirect_chain == [(detail_url(world, patient), 302)]
    return [str(message) for message in response.context["messages"]]


# -- the service -------------------------------------------------------------------------------


def test_the_planned_date_is_saved_and_audited_with_who_and_why(world, screened):
    planned = timezone.localdate() + timedelta(days=7)
    patient = patient_plan_inclusion(patient=screened, by=world.alice, planned_date=planned)
    assert patient.planned_day0_date == planned
    assert Patient.objects.get(pk=screened.pk).planned_day0_date == planned
    event = patient_events(screened).last()
    assert event.pgh_label == "update"
    assert event.pgh_context["reason"] == "inclusion planned"
    assert event.pgh_context["user"] == world.alice.pk
    assert event.pgh_diff == {"planned_day0_date": [None, planned.isoformat()]}


def test_a_coordinator_may_plan_and_a_reason_goes_into_the_audit(world, screened):
    planned = timezone.localdate() + timedelta(days=3)
    patient_plan_inclusion(
        patient=screened, by=world.bob, planned_date=planned, reason="  Patient back from leave "
    )
    assert Patient.objects.get(pk=screened.pk).planned_day0_date == planned
    event = patient_events(screened).last()
    assert event.pgh_context["reason"] == "inclusion planned: Patient back from leave"
    assert event.pgh_context["user"] == world.bob.pk


def test_none_clears_the_plan(world, screened):
    patient_plan_inclusion(
        patient=screened, by=world.alice, planned_date=timezone.localdate() + timedelta(days=3)
    )
    patient = patient_plan_inclusion(patient=screened, by=world.alice, planned_date=None)
    assert patient.planned_day0_date is None
    assert Patient.objects.get(pk=screened.pk).planned_day0_date is None
    assert patient_events(screened).last().pgh_context["reason"] == "planned inclusion cleared"


def test_the_same_date_again_writes_nothing(world, screened):
    planned = timezone.localdate() + timedelta(days=3)
    patient_plan_inclusion(patient=screened, by=world.alice, planned_date=planned)
    events = patient_events(screened).count()
    patient_plan_inclusion(patient=screened, by=world.bob, planned_date=planned)
    assert patient_events(screened).count() == events


@pytest.mark.parametrize("persona", ["monica", "diane", "charlie", "rene"])
def test_people_who_may_not_enrol_are_refused_and_nothing_is_written(world, screened, persona):
    events = patient_events(screened).count()
    with pytest.raises(PermissionDenied, match="screen, enrol or end"):
        patient_plan_inclusion(
            patient=screened,
            by=getattr(world, persona),
            planned_date=timezone.localdate() + timedelta(days=3),
        )
    assert Patient.objects.get(pk=screened.pk).planned_day0_date is None
    assert patient_events(screened).count() == events


@pytest.mark.parametrize(
    "status", ["enrolled", "screen_failed", "completed", "withdrawn", "died"], ids=str
)
def test_only_a_patient_in_screening_has_an_inclusion_to_plan(world, screened, status):
    Patient.objects.filter(pk=screened.pk).update(status=status)
    label = Patient.Status(status).label
    with pytest.raises(ValidationError) as refused:
        patient_plan_inclusion(
            patient=screened,
            by=world.alice,
            planned_date=timezone.localdate() + timedelta(days=3),
        )
    code = screened.subject_code
    assert refused.value.messages == [
        f"Only a patient in screening has an inclusion to plan: {code} is {label}."
    ]
    assert Patient.objects.get(pk=screened.pk).planned_day0_date is None


def test_a_date_before_screening_is_refused_naming_the_field(world, screened):
    day_before = screened.screening_date - timedelta(days=1)
    with pytest.raises(ValidationError) as refused:
        patient_plan_inclusion(patient=screened, by=world.alice, planned_date=day_before)
    assert refused.value.message_dict == {
        "planned_day0_date": [
            f"Planned inclusion date: {short(day_before)} is before the screening date "
            f"({short(screened.screening_date)})."
        ]
    }
    assert Patient.objects.get(pk=screened.pk).planned_day0_date is None
    # The screening day itself is allowed.
    patient_plan_inclusion(patient=screened, by=world.alice, planned_date=screened.screening_date)


def test_inclusion_is_planned_within_the_protocol_screening_window(world, screened):
    days = screening_days(screened)
    assert days == 28  # the trial's SCR visit: day_range min -28
    latest = screened.screening_date + timedelta(days=days)
    with pytest.raises(ValidationError) as refused:
        patient_plan_inclusion(
            patient=screened, by=world.alice, planned_date=latest + timedelta(days=1)
        )
    assert refused.value.message_dict == {
        "planned_day0_date": [
            f"Planned inclusion date: {short(latest + timedelta(days=1))} is too late; visit "
            f"SCR must take place at most 28 days before inclusion, so inclusion is on "
            f"{short(latest)} at the latest."
        ]
    }
    assert Patient.objects.get(pk=screened.pk).planned_day0_date is None
    patient_plan_inclusion(patient=screened, by=world.alice, planned_date=latest)
    assert Patient.objects.get(pk=screened.pk).planned_day0_date == latest


def test_the_window_counts_from_the_pre_inclusion_visit_once_it_is_dated(world, screened):
    """Enrolment checks the visit's date against day 0: a later visit allows a later day 0."""
    visit_day = screened.screening_date + timedelta(days=3)
    visit_record_date(visit=screened.visits.get(code="SCR"), by=world.alice, visit_date=visit_day)
    latest = visit_day + timedelta(days=screening_days(screened))
    with pytest.raises(ValidationError):
        patient_plan_inclusion(
            patient=screened, by=world.alice, planned_date=latest + timedelta(days=1)
        )
    patient_plan_inclusion(patient=screened, by=world.alice, planned_date=latest)
    assert Patient.objects.get(pk=screened.pk).planned_day0_date == latest


def test_without_a_pre_inclusion_day_range_only_the_screening_date_bounds_the_plan(world):
    """Sclero-JAK includes at its first visit (V0, day 0): no screening window to respect."""
    patient = world.ren_patients[0]
    assert all(visit.day_range is None for visit in patient.protocol_version.protocol.visits)
    planned = patient.screening_date + timedelta(days=90)
    patient_plan_inclusion(patient=patient, by=world.rene, planned_date=planned)
    assert Patient.objects.get(pk=patient.pk).planned_day0_date == planned


def test_the_database_refuses_a_plan_before_screening(world, screened):
    with pytest.raises(IntegrityError), transaction.atomic():
        Patient.objects.filter(pk=screened.pk).update(
            planned_day0_date=screened.screening_date - timedelta(days=1)
        )


def test_enrolment_keeps_the_plan_as_the_record_of_what_was_planned(client, world):
    Membership.objects.filter(user=world.diane).update(unblinded=True)
    allocation_list_generate(study=world.rct, site=world.bxp, size=4, seed=3, by=world.diane)
    client.force_login(world.alice)
    day0 = timezone.localdate() - timedelta(days=2)
    scr_day = day0 - timedelta(days=10)
    patient = screen(client, world.rct, site="BXP", screening_date=scr_day)
    rct_pre_inclusion(client, patient, scr_day)
    planned = day0 - timedelta(days=1)
    patient_plan_inclusion(patient=patient, by=world.alice, planned_date=planned)
    enrolled = patient_enrol(patient=patient, by=world.alice, day0_date=day0)
    assert enrolled.status == Patient.Status.ENROLLED
    assert enrolled.day0_date == day0
    assert Patient.objects.get(pk=patient.pk).planned_day0_date == planned


# -- the patient page ------------------------------------------------------------------------


def test_the_patient_page_sets_the_planned_date(client, world, screened):
    client.force_login(world.alice)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    body = client.get(detail_url(world, screened)).content.decode()
    assert 'data-testid="plan-inclusion-form"' in body
    assert 'data-testid="planned-inclusion"' not in body
    planned = timezone.localdate() + timedelta(days=7)
    assert post_plan(client, world, screened, planned.isoformat()) == [
        f"Planned inclusion date of {screened.subject_code} saved."
    ]
    assert Patient.objects.get(pk=screened.pk).planned_day0_date == planned
    assert patient_events(screened).last().pgh_context["user"] == world.alice.pk

    response = client.get(detail_url(world, screened))
    assert response.context["plan_form"]["planned_day0_date"].value() == planned
    body = response.content.decode()
    assert f'value="{planned.isoformat()}"' in body
    assert f'data-testid="planned-inclusion">{short(planned)}</dd>' in body

    assert post_plan(client, world, screened, "") == [
        f"Planned inclusion date of {screened.subject_code} cleared."
    ]
    assert Patient.objects.get(pk=screened.pk).planned_day0_date is None


def test_refusals_come_back_as_messages_naming_the_field(client, world, screened):
    client.force_login(world.bob)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    assert post_plan(client, world, screened, "not-a-date") == [
        "Planned inclusion date: Enter a valid date."
    ]
    too_late = screened.screening_date + timedelta(days=screening_days(screened) + 1)
    (message,) = post_plan(client, world, screened, too_late.isoformat())
    assert message.startswith(f"Planned inclusion date: {short(too_late)} is too late")
    assert Patient.objects.get(pk=screened.pk).planned_day0_date is None


def test_everyone_who_can_view_sees_the_plan_but_only_site_staff_get_the_form(
    client, world, screened
):
    planned = timezone.localdate() + timedelta(days=7)
    patient_plan_inclusion(patient=screened, by=world.alice, planned_date=planned)
    client.force_login(world.monica)
    response = client.get(detail_url(world, screened))
    assert response.context["plan_form"] is None
    body = response.content.decode()
    assert f'data-testid="planned-inclusion">{short(planned, "fr")}</dd>' in body
    assert 'data-testid="plan-inclusion-form"' not in body
    response = client.post(plan_url(world, screened), {"planned_day0_date": ""})
    assert response.status_code == 403
    assert Patient.objects.get(pk=screened.pk).planned_day0_date == planned


def test_an_enrolled_patient_keeps_showing_the_plan_without_the_form(client, world, screened):
    planned = timezone.localdate() + timedelta(days=7)
    patient_plan_inclusion(patient=screened, by=world.alice, planned_date=planned)
    Patient.objects.filter(pk=screened.pk).update(status=Patient.Status.ENROLLED)
    client.force_login(world.alice)
    response = client.get(detail_url(world, screened))
    assert response.context["plan_form"] is None
    assert 'data-testid="planned-inclusion"' in response.content.decode()


def test_another_sites_patient_is_a_404(client, world, screened):
    client.force_login(world.charlie)
    planned = timezone.localdate() + timedelta(days=7)
    response = client.post(plan_url(world, screened), {"planned_day0_date": planned.isoformat()})
    assert response.status_code == 404
    assert Patient.objects.get(pk=screened.pk).planned_day0_date is None


def test_the_plan_view_takes_only_posts(client, world, screened):
    client.force_login(world.alice)
    assert client.get(plan_url(world, screened)).status_code == 405
