"""The protocol schedule through the screens of NCT00479934: windows (inclusive edges, a
deviation one day outside), dates that are never possible, visit order, forms a visit does
not take, other sites and read-only roles, optimistic locking, reasons for change in the
audit trail, soft warnings, conditional fields, partial saves, unscheduled visits,
withdrawal, and enrolment refused while the checklist and the data disagree."""

from __future__ import annotations

from datetime import date, timedelta

import pghistory.models
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape

from ecrf.crfs.enrolment import patient_enrol
from ecrf.crfs.models import (
    Consent,
    Demographics,
    Dlqi,
    Echocardiography,
    Eligibility,
    MdmFlow,
    Mrss,
    SafetyLabs,
    SkinBiopsy,
)
from ecrf.crfs.services import crf_save
from ecrf.patients.models import Allocation, Deviation, Patient, Visit
from ecrf.patients.randomisation import allocation_list_generate
from ecrf.patients.services import patient_create
from ecrf.patients.visits import visit_record_date
from ecrf.scoring import mrss as mrss_scoring
from tests.clock import TODAY
from tests.factories import MembershipFactory, UserFactory
from tests.walks.helpers import (
    checklist,
    date_visit,
    dlqi_data,
    enrol,
    fill,
    flashed,
    form_url,
    haq_data,
    iso,
    labs_data,
    mrss_data,
    rct_m0,
    rct_pre_inclusion,
    saved,
    screen,
    visit_status,
    visit_url,
)

pytestmark = pytest.mark.django_db

DAY0 = TODAY - timedelta(days=130)
SCR_DAY = DAY0 - timedelta(days=15)
M3_TARGET = DAY0 + timedelta(days=91)


@pytest.fixture
def client(client, world):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.force_login(world.alice)
    return client


@pytest.fixture
def kits(world):
    keeper = UserFactory(username="keeper")
    MembershipFactory(user=keeper, study=world.rct, role="data_manager", unblinded=True)
    return allocation_list_generate(study=world.rct, site=world.bxp, size=8, seed=11, by=keeper)


@pytest.fixture
def screened(client, world) -> Patient:
    """A Bordeaux patient in screening, SCR dated and consent signed that day."""
    patient = screen(client, world.rct, site="BXP", screening_date=SCR_DAY)
    saved(date_visit(client, patient, "SCR", SCR_DAY))
    consent = {
        "consent_date": iso(SCR_DAY),
        "consent_version": "v2.1",
        "signed_by_investigator": "true",
    }
    saved(fill(client, patient, "SCR", "consent", consent))
    return patient


@pytest.fixture
def enrolled(client, world, kits) -> Patient:
    """Enrolled on DAY0 (130 days ago), inclusion visit M0 complete."""
    patient = screen(client, world.rct, site="BXP", screening_date=SCR_DAY)
    rct_pre_inclusion(client, patient, SCR_DAY)
    response = enrol(client, patient, DAY0)
    patient.refresh_from_db()
    assert patient.status == Patient.Status.ENROLLED, flashed(response)
    rct_m0(client, patient, DAY0, Allocation.objects.get(patient=patient).kit_number)
    assert visit_status(patient, "M0") == "complete"
    return patient


def miss(client, patient: Patient, code: str, reason: str = "Patient hospitalised elsewhere"):
    visit = patient.visits.get(code=code)
    response = client.post(visit_url(patient, code), {"reason": reason, "version": visit.version})
    assert response.status_code == 302, response.content[:300]
    assert visit_status(patient, code) == "missed"


def date_errors(response) -> str:
    assert response.status_code == 200
    form = response.context["date_form"]
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def form_errors(response) -> dict:
    assert response.status_code == 200, response.status_code
    return {field: " ".join(errors) for field, errors in response.context["form"].errors.items()}


def m3(patient: Patient) -> Visit:
    return patient.visits.get(code="M3")


# -- windows ---------------------------------------------------------------------------------


def test_window_edges_are_inclusive_without_deviation(client, enrolled):
    miss(client, enrolled, "M1")
    visit = m3(enrolled)
    assert (visit.target_date, visit.earliest_date, visit.latest_date) == (
        M3_TARGET,
        M3_TARGET - timedelta(days=14),
        M3_TARGET + timedelta(days=14),
    )
    for day in (M3_TARGET - timedelta(days=14), M3_TARGET + timedelta(days=14)):
        saved(date_visit(client, enrolled, "M3", day, change_reason="Edge of the window tried"))
        assert m3(enrolled).visit_date == day
        assert m3(enrolled).status == "in_progress"
    assert not Deviation.objects.filter(patient=enrolled, visit__code="M3").exists()


@pytest.mark.parametrize(("offset", "days_outside"), [(-15, -1), (15, 1)])
def test_one_day_outside_the_window_needs_a_deviation(client, enrolled, offset, days_outside):
    miss(client, enrolled, "M1")
    day = M3_TARGET + timedelta(days=offset)

    errors = date_errors(date_visit(client, enrolled, "M3", day))
    assert "outside the window of M3" in errors
    assert f"by {days_outside:+d} days" in errors
    assert "deviation" in errors
    # A category without a reason is not a deviation either.
    errors = date_errors(
        date_visit(client, enrolled, "M3", day, deviation_category="out_of_window")
    )
    assert "deviation" in errors
    assert m3(enrolled).visit_date is None
    assert not Deviation.objects.filter(visit__code="M3").exists()

    saved(
        date_visit(
            client,
            enrolled,
            "M3",
            day,
            deviation_category="out_of_window",
            deviation_reason="Patient on holiday",
        )
    )
    assert m3(enrolled).visit_date == day
    deviation = Deviation.objects.get(patient=enrolled, visit__code="M3")
    assert (deviation.category, deviation.days_outside, deviation.reason) == (
        "out_of_window",
        days_outside,
        "Patient on holiday",
    )
    # Recorded and listed: on the visit page and in the casebook.
    assert "Patient on holiday" in client.get(visit_url(enrolled, "M3")).content.decode()
    casebook = client.get(
        reverse("patients:detail", args=[enrolled.study.code, enrolled.subject_code])
    )
    assert deviation in list(casebook.context["deviations"])
    assert "Patient on holiday" in casebook.content.decode()


def test_future_visit_date_is_refused_even_with_a_deviation(client, enrolled):
    miss(client, enrolled, "M1")
    tomorrow = TODAY + timedelta(days=1)
    errors = date_errors(
        date_visit(
            client,
            enrolled,
            "M3",
            tomorrow,
            deviation_category="out_of_window",
            deviation_reason="typo",
        )
    )
    assert "cannot be in the future" in errors
    assert m3(enrolled).visit_date is None
    assert not Deviation.objects.filter(patient=enrolled, visit__code="M3").exists()


def test_visit_and_form_dates_before_consent_are_refused(client, screened):
    # Re-dating the pre-inclusion visit before the signature.
    errors = date_errors(date_visit(client, screened, "SCR", SCR_DAY - timedelta(days=1)))
    assert "before the consent date" in errors
    assert screened.visits.get(code="SCR").visit_date == SCR_DAY

    # A form dated before consent: refused on its date field, nothing saved.
    response = fill(client, screened, "SCR", "mrss", mrss_data(SCR_DAY - timedelta(days=2), 2))
    assert "before the consent date" in form_errors(response)["exam_date"]
    assert not Mrss.objects.filter(patient=screened).exists()


def test_form_date_in_the_future_is_refused(client, screened):
    response = fill(
        client,
        screened,
        "SCR",
        "echocardiography",
        {"exam_date": iso(TODAY + timedelta(days=3)), "lvef_pct": "60"},
    )
    assert "cannot be in the future" in form_errors(response)["exam_date"]
    assert not Echocardiography.objects.filter(patient=screened).exists()


def test_visit_date_before_the_previous_visit_is_refused(client, enrolled):
    errors = date_errors(
        date_visit(
            client,
            enrolled,
            "M1",
            DAY0 - timedelta(days=1),
            deviation_category="out_of_window",
            deviation_reason="early",
        )
    )
    assert "before the previous visit M0" in errors
    assert enrolled.visits.get(code="M1").visit_date is None
    assert not Deviation.objects.filter(patient=enrolled).exists()


# -- order -----------------------------------------------------------------------------------


def test_visit_cannot_start_before_the_earlier_one_is_done_or_missed(client, enrolled):
    response = date_visit(client, enrolled, "M3", M3_TARGET)
    assert "Visit M1 comes first" in date_errors(response)
    assert m3(enrolled).visit_date is None
    assert "Visit M1 comes first" in client.get(visit_url(enrolled, "M3")).context["order_problem"]

    # Missed needs its reason.
    m1 = enrolled.visits.get(code="M1")
    response = client.post(visit_url(enrolled, "M1"), {"reason": " ", "version": m1.version})
    assert response.status_code == 200
    assert visit_status(enrolled, "M1") == "planned"

    miss(client, enrolled, "M1")
    assert enrolled.visits.get(code="M1").missed_reason == "Patient hospitalised elsewhere"
    assert Deviation.objects.get(patient=enrolled, visit__code="M1").category == "missed_visit"
    saved(date_visit(client, enrolled, "M3", M3_TARGET))
    assert m3(enrolled).visit_date == M3_TARGET


def test_inclusion_visit_cannot_be_declared_missed(client, world, kits):
    patient = screen(client, world.rct, site="BXP", screening_date=SCR_DAY)
    rct_pre_inclusion(client, patient, SCR_DAY)
    enrol(client, patient, DAY0)
    m0 = patient.visits.get(code="M0")
    response = client.post(visit_url(patient, "M0"), {"reason": "no", "version": m0.version})
    assert response.status_code == 200
    assert visit_status(patient, "M0") == "in_progress"


# -- forms the visit does not take, other sites, read-only roles -------------------------------


@pytest.mark.parametrize(
    ("code", "form_code"),
    [
        ("M1", "skin_biopsy"),  # a trial form, not at this visit
        ("M0", "echocardiography"),  # pre-inclusion only
        ("M0", "mdm_flow"),  # the other study's form
        ("M0", "nonsense"),  # no such form at all
        ("M0", "pregnancy_test"),  # SCR only, and she has no childbearing potential
    ],
)
def test_form_not_in_the_visit_is_404_and_saves_nothing(client, enrolled, code, form_code):
    saved(date_visit(client, enrolled, "M1", DAY0 + timedelta(days=30)))
    before = {model: model.objects.count() for model in (SkinBiopsy, Echocardiography, MdmFlow)}
    url = form_url(enrolled, code, form_code)
    assert client.get(url).status_code == 404
    payload = {
        "version": 0,
        "biopsy_date": iso(DAY0),
        "body_site": "forearm",
        "exam_date": iso(DAY0),
        "lvef_pct": "60",
        "condition": "untreated",
    }
    assert client.post(url, payload).status_code == 404
    preview = reverse(
        "crfs:preview", args=[enrolled.study.code, enrolled.subject_code, code, 1, form_code]
    )
    assert client.post(preview, payload).status_code == 404
    assert {model: model.objects.count() for model in before} == before


def test_instance_urls_that_do_not_belong_to_the_visit_are_404(client, enrolled):
    dlqi = Dlqi.objects.get(patient=enrolled, visit__code="M0")
    # A non-repeatable form addressed by id, and a visit that does not exist in the protocol.
    assert client.get(form_url(enrolled, "M0", "dlqi", instance=dlqi)).status_code == 404
    assert client.get(visit_url(enrolled, "V0")).status_code == 404
    assert client.get(form_url(enrolled, "M0", "dlqi", repeat=2)).status_code == 404


def test_another_sites_patient_is_404_and_nothing_saved(client, world, enrolled):
    labs = SafetyLabs.objects.get(patient=enrolled, visit__code="M0")
    for intruder in (world.charlie, world.rene):
        client.force_login(intruder)
        assert client.get(visit_url(enrolled, "M0")).status_code == 404
        assert client.get(form_url(enrolled, "M0", "safety_labs")).status_code == 404
        response = client.post(
            form_url(enrolled, "M0", "safety_labs"),
            {**labs_data(DAY0), "hemoglobin_g_dl": "5.0", "version": 1, "reason": "x"},
        )
        assert response.status_code == 404
        response = client.post(
            visit_url(enrolled, "M1"), {"visit_date": iso(DAY0 + timedelta(days=30)), "version": 1}
        )
        assert response.status_code == 404
    labs.refresh_from_db()
    assert (str(labs.hemoglobin_g_dl), labs.version) == ("13.1", 1)
    assert enrolled.visits.get(code="M1").visit_date is None


def test_monitor_reads_but_cannot_write(client, world, enrolled):
    client.force_login(world.monica)
    assert client.get(form_url(enrolled, "M0", "dlqi")).status_code == 200
    events = pghistory.models.Events.objects.count()
    response = client.post(
        form_url(enrolled, "M0", "dlqi"), {**dlqi_data("very_much"), "version": 1, "reason": "x"}
    )
    assert response.status_code == 403
    response = client.post(
        visit_url(enrolled, "M1"), {"visit_date": iso(DAY0 + timedelta(days=30)), "version": 1}
    )
    assert response.status_code == 403
    assert Dlqi.objects.get(patient=enrolled, visit__code="M0").q1 == "a_little"
    assert enrolled.visits.get(code="M1").visit_date is None
    assert pghistory.models.Events.objects.count() == events


# -- optimistic locking and reasons for change ---------------------------------------------------


def test_second_save_on_a_stale_version_is_409_and_the_first_is_kept(client, world, enrolled):
    url = form_url(enrolled, "M0", "dlqi")
    loaded = client.get(url).context["form"]["version"].value()
    assert loaded == 1
    # Alice saves first, Bob (who loaded version 1 too) second.
    saved(client.post(url, {**dlqi_data("a_lot"), "version": loaded, "reason": "Answer re-read"}))
    client.force_login(world.bob)
    response = client.post(url, {**dlqi_data("not_at_all"), "version": loaded, "reason": "typo"})
    assert response.status_code == 409
    body = response.content.decode()
    assert "Someone else saved this" in body
    assert f'href="{url}"' in body
    dlqi = Dlqi.objects.get(patient=enrolled, visit__code="M0")
    assert (dlqi.q1, dlqi.version) == ("a_lot", 2)

    # Two people creating the same form: the second finds it already saved.
    saved(date_visit(client, enrolled, "M1", DAY0 + timedelta(days=30)))
    first = client.post(form_url(enrolled, "M1", "haq"), {**haq_data(1), "version": 0})
    client.force_login(world.alice)
    second = client.post(form_url(enrolled, "M1", "haq"), {**haq_data(2), "version": 0})
    assert (first.status_code, second.status_code) == (302, 409)
    assert enrolled.visits.get(code="M1").version == 2  # dated, then nothing else

    # The visit date is locked the same way.
    visit = enrolled.visits.get(code="M1")
    response = client.post(
        visit_url(enrolled, "M1"),
        {"visit_date": iso(DAY0 + timedelta(days=31)), "version": visit.version - 1},
    )
    assert response.status_code == 409
    assert enrolled.visits.get(code="M1").visit_date == DAY0 + timedelta(days=30)


def test_change_after_first_save_needs_a_reason_kept_in_the_audit_trail(client, world, enrolled):
    url = form_url(enrolled, "M0", "dlqi")
    dlqi = Dlqi.objects.get(patient=enrolled, visit__code="M0")
    events = pghistory.models.Events.objects.tracks(dlqi).count()

    response = client.post(url, {**dlqi_data("very_much"), "version": 1})
    assert "reason" in form_errors(response)
    dlqi.refresh_from_db()
    assert (dlqi.q1, dlqi.total, dlqi.version) == ("a_little", 10, 1)
    assert pghistory.models.Events.objects.tracks(dlqi).count() == events

    saved(
        client.post(url, {**dlqi_data("very_much"), "version": 1, "reason": "Transcription error"})
    )
    dlqi.refresh_from_db()
    assert (dlqi.q1, dlqi.total, dlqi.version) == ("very_much", 28, 2)
    event = pghistory.models.Events.objects.tracks(dlqi).order_by("pgh_id").last()
    assert event.pgh_label == "update"
    assert event.pgh_context["reason"] == "Transcription error"
    assert event.pgh_context["user"] == world.alice.pk
    assert event.pgh_diff["q1"] == ["a_little", "very_much"]
    assert event.pgh_diff["total"] == [10, 28]
    assert event.pgh_diff["version"] == [1, 2]


# -- hard errors and soft warnings --------------------------------------------------------------


def test_mrss_falling_by_more_than_half_needs_confirmation(client, enrolled):
    saved(date_visit(client, enrolled, "M1", DAY0 + timedelta(days=30)))
    url = form_url(enrolled, "M1", "mrss")
    m1_day = DAY0 + timedelta(days=30)

    response = client.post(url, {**mrss_data(m1_day, 0), "version": 0})
    errors = form_errors(response)
    assert "falls from 34 at M0 to 0" in errors["confirm_mrss_drop"]
    assert "falls from 34 at M0 to 0" in response.content.decode()
    assert not Mrss.objects.filter(visit__code="M1").exists()

    # Exactly half is not "more than 50 %".
    saved(client.post(url, {**mrss_data(m1_day, 1), "version": 0}))
    mrss = Mrss.objects.get(patient=enrolled, visit__code="M1")
    assert (mrss.total, mrss.confirmed_warnings) == (17, [])

    saved(
        client.post(
            url,
            {
                **mrss_data(m1_day, 0),
                "version": 1,
                "reason": "Re-examined",
                "confirm_mrss_drop": "on",
            },
        )
    )
    mrss.refresh_from_db()
    assert mrss.total == 0
    assert [w["code"] for w in mrss.confirmed_warnings] == ["mrss_drop"]
    assert "falls from 34" in mrss.confirmed_warnings[0]["message"]


def test_lvef_under_30_needs_confirmation_and_out_of_range_is_refused(client, screened):
    url = form_url(screened, "SCR", "echocardiography")
    response = client.post(url, {"exam_date": iso(SCR_DAY), "lvef_pct": "25", "version": 0})
    assert "LVEF 25 % is under 30 %" in form_errors(response)["confirm_lvef_low"]
    assert not Echocardiography.objects.filter(patient=screened).exists()

    for value, expected in (
        ("95", "less than or equal to 90"),
        ("9", "greater than or equal to 10"),
        ("sixty", "whole number"),
    ):
        response = client.post(url, {"exam_date": iso(SCR_DAY), "lvef_pct": value, "version": 0})
        assert expected in form_errors(response)["lvef_pct"], value
        assert not Echocardiography.objects.filter(patient=screened).exists()

    saved(
        client.post(
            url,
            {"exam_date": iso(SCR_DAY), "lvef_pct": "25", "version": 0, "confirm_lvef_low": "on"},
        )
    )
    echo = Echocardiography.objects.get(patient=screened)
    assert echo.lvef_pct == 25
    assert echo.confirmed_warnings == [{"code": "lvef_low", "message": "LVEF 25 % is under 30 %."}]


# -- conditional fields ---------------------------------------------------------------------------


def test_dlqi_q7b_is_cleared_when_q7a_is_yes(client, enrolled):
    saved(date_visit(client, enrolled, "M1", DAY0 + timedelta(days=30)))
    response = client.get(form_url(enrolled, "M1", "dlqi"))
    assert response.context["form"].fields["q7b"].widget.attrs["data-show-if"] == "q7a=no"
    saved(fill(client, enrolled, "M1", "dlqi", {**dlqi_data("a_little"), "q7a": "yes"}))
    dlqi = Dlqi.objects.get(patient=enrolled, visit__code="M1")
    assert dlqi.q7a == "yes"
    assert dlqi.q7b == ""  # the hidden answer is not kept (a text column: blank, not NULL)
    assert dlqi.total == 9 + 3
    assert dlqi.status == "complete"


def test_childbearing_potential_is_for_women_and_decides_the_pregnancy_test(client, screened):
    scr = "SCR"
    response = client.get(form_url(screened, scr, "demographics"))
    assert (
        response.context["form"].fields["childbearing_potential"].widget.attrs["data-show-if"]
        == "sex=F"
    )
    saved(
        fill(
            client,
            screened,
            scr,
            "demographics",
            {"birth_year": "1970", "sex": "M", "childbearing_potential": "true"},
        )
    )
    demographics = Demographics.objects.get(patient=screened)
    assert (demographics.sex, demographics.childbearing_potential) == ("M", None)
    assert demographics.status == "complete"
    assert client.get(form_url(screened, scr, "pregnancy_test")).status_code == 404

    saved(
        fill(
            client,
            screened,
            scr,
            "demographics",
            {"birth_year": "1970", "sex": "F", "childbearing_potential": "false"},
            reason="Sex entered wrongly",
        )
    )
    assert client.get(form_url(screened, scr, "pregnancy_test")).status_code == 404

    saved(
        fill(
            client,
            screened,
            scr,
            "demographics",
            {"birth_year": "1970", "sex": "F", "childbearing_potential": "true"},
            reason="Childbearing potential confirmed",
        )
    )
    assert client.get(form_url(screened, scr, "pregnancy_test")).status_code == 200
    rows = {row[0]: row[4] for row in client.get(visit_url(screened, scr)).context["rows"]}
    assert rows["pregnancy_test"] is True  # offered and required
    saved(
        fill(
            client,
            screened,
            scr,
            "pregnancy_test",
            {"test_date": iso(SCR_DAY), "test_type": "urine", "result": "negative"},
        )
    )


# -- partial saves and completeness ------------------------------------------------------------


def test_partial_save_then_complete_and_visit_completeness(client, enrolled):
    m1_day = DAY0 + timedelta(days=30)
    saved(date_visit(client, enrolled, "M1", m1_day))
    half = mrss_data(m1_day, 2)
    for area in mrss_scoring.AREAS[9:]:
        half[area] = ""
    saved(fill(client, enrolled, "M1", "mrss", half))
    mrss = Mrss.objects.get(patient=enrolled, visit__code="M1")
    assert (mrss.status, mrss.total) == ("in_progress", None)

    saved(fill(client, enrolled, "M1", "dlqi", dlqi_data()))
    saved(fill(client, enrolled, "M1", "haq", haq_data()))
    saved(fill(client, enrolled, "M1", "safety_labs", labs_data(m1_day)))
    accountability = {
        "kit_number": Allocation.objects.get(patient=enrolled).kit_number,
        "accountability_date": iso(m1_day),
        "units_dispensed": "720",
        "units_returned": "600",
    }
    saved(fill(client, enrolled, "M1", "drug_accountability", accountability))
    # Every form but the mRSS is complete: the visit is not.
    assert visit_status(enrolled, "M1") == "in_progress"

    saved(fill(client, enrolled, "M1", "mrss", mrss_data(m1_day, 2), reason="Areas scored"))
    mrss.refresh_from_db()
    assert (mrss.status, mrss.total) == ("complete", 34)
    assert visit_status(enrolled, "M1") == "complete"

    # Emptying a required answer reopens the form and the visit.
    saved(
        fill(
            client,
            enrolled,
            "M1",
            "haq",
            {**haq_data(), "dress": ""},
            reason="Not asked at the visit",
        )
    )
    assert visit_status(enrolled, "M1") == "in_progress"


# -- unscheduled visits and the end of the study ---------------------------------------------


def test_unscheduled_visits_are_added_with_their_own_forms(client, enrolled):
    url = reverse("patients:unscheduled", args=[enrolled.study.code, enrolled.subject_code])
    first, second = client.post(url), client.post(url)
    assert first.url == visit_url(enrolled, "UNS", 1)
    assert second.url == visit_url(enrolled, "UNS", 2)
    assert list(
        enrolled.visits.filter(code="UNS").order_by("repeat").values_list("repeat", "status")
    ) == [(1, "planned"), (2, "planned")]

    uns2 = enrolled.visits.get(code="UNS", repeat=2)
    day = DAY0 + timedelta(days=45)
    saved(
        client.post(
            visit_url(enrolled, "UNS", 2), {"visit_date": iso(day), "version": uns2.version}
        )
    )
    rows = [row[0] for row in client.get(visit_url(enrolled, "UNS", 2)).context["rows"]]
    assert rows == ["safety_labs", "mrss"]
    saved(
        client.post(
            form_url(enrolled, "UNS", "safety_labs", repeat=2), {**labs_data(day), "version": 0}
        )
    )
    labs = SafetyLabs.objects.get(patient=enrolled, visit__code="UNS")
    assert (labs.visit.repeat, labs.status) == (2, "complete")
    assert (
        client.post(
            form_url(enrolled, "UNS", "dlqi", repeat=2), {**dlqi_data(), "version": 0}
        ).status_code
        == 404
    )
    assert not Dlqi.objects.filter(visit__code="UNS").exists()


def test_unscheduled_visit_needs_an_enrolled_patient(client, screened):
    response = client.post(
        reverse("patients:unscheduled", args=[screened.study.code, screened.subject_code])
    )
    assert "enrolled patients" in " ".join(flashed(response))
    assert not screened.visits.filter(code="UNS").exists()


def test_withdrawal_closes_the_remaining_visits(client, enrolled):
    url = reverse("patients:end", args=[enrolled.study.code, enrolled.subject_code])
    response = client.post(url, {"status": "withdrawn", "end_date": iso(TODAY), "reason": ""})
    enrolled.refresh_from_db()
    assert enrolled.status == Patient.Status.ENROLLED
    assert "Reason" in " ".join(flashed(response))
    assert visit_status(enrolled, "M1") == "planned"

    response = client.post(
        url, {"status": "withdrawn", "end_date": iso(TODAY), "reason": "Moved abroad"}
    )
    enrolled.refresh_from_db()
    assert enrolled.status == Patient.Status.WITHDRAWN
    statuses = dict(enrolled.visits.values_list("code", "status"))
    assert statuses == {
        "SCR": "complete", "M0": "complete", "M1": "closed", "M3": "closed",
        "M6": "closed", "M12": "closed",
    }  # fmt: skip
    event = pghistory.models.Events.objects.tracks(enrolled).order_by("pgh_id").last()
    assert "Moved abroad" in event.pgh_context["reason"]

    # Nothing more is entered: neither a date nor a form.
    m1 = enrolled.visits.get(code="M1")
    response = client.post(
        visit_url(enrolled, "M1"),
        {"visit_date": iso(DAY0 + timedelta(days=30)), "version": m1.version},
    )
    assert response.status_code == 200
    assert enrolled.visits.get(code="M1").visit_date is None
    response = fill(client, enrolled, "M0", "dlqi", dlqi_data("a_lot"), reason="late change")
    assert "Withdrawn" in " ".join(response.context["form"].non_field_errors())
    assert Dlqi.objects.get(visit__code="M0", patient=enrolled).q1 == "a_little"


# -- screening and eligibility ---------------------------------------------------------------


def test_checklist_shows_each_criterion_verbatim(client, screened):
    response = client.get(form_url(screened, "SCR", "eligibility"))
    body = response.content.decode()
    for criterion in screened.protocol_version.protocol.eligibility:
        label = response.context["form"].fields[f"criterion_{criterion.id}"].label
        # French pages read the translation first, with the registry's English under it.
        assert label == f"{criterion.id} · {criterion.translation or criterion.text}"
        assert escape(criterion.text) in body


def test_enrolment_refused_while_checklist_and_mrss_disagree(client, world, kits):
    patient = screen(client, world.rct, site="BXP", screening_date=SCR_DAY)
    mrss = {**mrss_data(SCR_DAY, 1), "face": "2"}  # 18: not > 20
    rct_pre_inclusion(client, patient, SCR_DAY, mrss=mrss)
    assert Mrss.objects.get(patient=patient).total == 18
    response = enrol(client, patient, DAY0)
    patient.refresh_from_db()
    assert patient.status == Patient.Status.SCREENING
    assert not Allocation.objects.filter(patient=patient).exists()
    problems = [m for m in flashed(response) if m.startswith("I3")]
    assert len(problems) == 1
    assert "the checklist says the patient qualifies" in problems[0]
    assert "mRSS total at SCR is 18 (needs > 20)" in problems[0]
    assert Eligibility.objects.get(patient=patient).eligible is None


def test_enrolment_refused_naming_an_unanswered_criterion(client, world, kits):
    patient = screen(client, world.rct, site="BXP", screening_date=SCR_DAY)
    answers = checklist(patient)
    answers.pop("criterion_I5")
    rct_pre_inclusion(client, patient, SCR_DAY, answers=answers)
    eligibility = Eligibility.objects.get(patient=patient)
    assert eligibility.status == "in_progress"
    assert eligibility.missing_fields() == ["answers.I5"]
    assert visit_status(patient, "SCR") == "in_progress"
    response = enrol(client, patient, DAY0)
    patient.refresh_from_db()
    assert patient.status == Patient.Status.SCREENING
    problems = " ".join(flashed(response))
    assert "I5" in problems
    assert "answer this line" in problems
    assert "Visit SCR must be complete" in problems
    # The forms still incomplete are named by their protocol labels.
    assert "still incomplete: Eligibility checklist" in problems


def test_screen_failure_needs_its_reasons(client, screened):
    url = reverse("patients:screen_fail", args=[screened.study.code, screened.subject_code])
    client.post(url, {"reasons": "   "})
    screened.refresh_from_db()
    assert screened.status == Patient.Status.SCREENING
    saved(fill(client, screened, "SCR", "eligibility", checklist(screened, E5="yes")))
    client.post(url, {"reasons": "Ongoing cancer"})
    screened.refresh_from_db()
    assert screened.status == Patient.Status.SCREEN_FAILED
    eligibility = Eligibility.objects.get(patient=screened)
    assert (eligibility.eligible, eligibility.screen_failure_reasons) == (False, "Ongoing cancer")
    assert visit_status(screened, "SCR") == "closed"


def test_visit_and_inclusion_dates_before_the_screening_date_are_refused(client, world):
    client.force_login(world.rene)
    patient = screen(client, world.cohort, site="REN", screening_date=SCR_DAY, group="HD")
    errors = date_errors(date_visit(client, patient, "V0", SCR_DAY - timedelta(days=3)))
    assert "before the patient's screening date" in errors
    assert patient.visits.get(code="V0").visit_date is None

    response = enrol(client, patient, SCR_DAY - timedelta(days=3))
    patient.refresh_from_db()
    assert (patient.status, patient.day0_date) == (Patient.Status.SCREENING, None)
    assert f"before the screening date ({SCR_DAY.isoformat()})" in " ".join(flashed(response))


def test_inclusion_date_at_the_edge_of_the_calendar_is_refused_not_a_crash(world):
    """Year 1: the pre-inclusion window (day -28) and the look-back periods of the checks
    fall outside the calendar; the answer is a message."""
    first = date.min
    patient = patient_create(study=world.rct, site=world.bxp, by=world.alice, screening_date=first)
    scr = visit_record_date(visit=patient.visits.get(code="SCR"), by=world.alice, visit_date=first)
    consent = {"consent_date": first, "consent_version": "1", "signed_by_investigator": True}
    crf_save(visit=scr, form_code="consent", values=consent, by=world.alice, expected_version=0)
    answers = {c.id: c.kind == "inclusion" for c in patient.protocol_version.protocol.eligibility}
    crf_save(
        visit=scr,
        form_code="eligibility",
        values={"answers": answers},
        by=world.alice,
        expected_version=0,
    )
    Visit.objects.filter(pk=scr.pk).update(status=Visit.Status.COMPLETE)
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        patient_enrol(patient=patient, by=world.alice, day0_date=first + timedelta(days=5))
    assert "The inclusion date 0001-01-06 is out of range." in refused.value.messages
    patient.refresh_from_db()
    assert patient.status == Patient.Status.SCREENING


def test_consent_dated_after_the_visit_is_refused(client, world):
    patient = screen(client, world.rct, site="BXP", screening_date=SCR_DAY)
    saved(date_visit(client, patient, "SCR", SCR_DAY))
    late = {
        "consent_date": iso(SCR_DAY + timedelta(days=2)),
        "consent_version": "v2.1",
        "signed_by_investigator": "true",
    }
    errors = form_errors(fill(client, patient, "SCR", "consent", late))
    assert f"Visit SCR took place on {SCR_DAY.isoformat()}" in errors["consent_date"]
    assert patient.visits.get(code="SCR").visit_date == SCR_DAY
    assert not Consent.objects.filter(patient=patient).exists()


def test_derived_and_bookkeeping_fields_cannot_be_posted(client, world, enrolled):
    other = world.bxp_patients[0]
    m1_day = DAY0 + timedelta(days=30)
    saved(date_visit(client, enrolled, "M1", m1_day))
    tampered = {
        **mrss_data(m1_day, 1),
        "total": "51",
        "status": "complete",
        "patient": str(other.pk),
        "visit": str(enrolled.visits.get(code="M0").pk),
        "entered_by": str(world.charlie.pk),
        "confirmed_warnings": '[{"code": "mrss_drop"}]',
        "protocol_version": "999",
    }
    saved(fill(client, enrolled, "M1", "mrss", tampered))
    mrss = Mrss.objects.get(visit__code="M1", patient=enrolled)
    assert (mrss.total, mrss.patient, mrss.visit.code) == (17, enrolled, "M1")
    assert (mrss.entered_by, mrss.confirmed_warnings) == (world.alice, [])
    assert mrss.protocol_version == enrolled.protocol_version


def test_screen_failure_before_the_checklist_keeps_its_reasons(client, screened):
    url = reverse("patients:screen_fail", args=[screened.study.code, screened.subject_code])
    client.post(url, {"reasons": "Withdrew consent before the examinations"})
    screened.refresh_from_db()
    assert screened.status == Patient.Status.SCREEN_FAILED
    eligibility = Eligibility.objects.get(patient=screened)
    assert (eligibility.visit.code, eligibility.eligible, eligibility.answers) == ("SCR", False, {})
    assert eligibility.screen_failure_reasons == "Withdrew consent before the examinations"
    assert visit_status(screened, "SCR") == "closed"
