"""The SDV screens: the matrix (states, backlog, bulk SDV of a visit, filters, other sites,
pinned query counts), the SDV page of a form, and the card on the visit page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from ecrf.crfs.services import crf_save
from ecrf.patients.models import FormIndexEntry, Patient
from ecrf.review.locks import data_freeze, data_lock
from ecrf.review.models import SdvMark
from ecrf.review.sdv import sdv_mark
from ecrf.review.states import CellState
from tests.factories import (
    AdverseEventFactory,
    PatientFactory,
)
from tests.review.conftest import entry, fresh, mrss_values, patient_with_forms, seed_where

pytestmark = pytest.mark.django_db


def matrix_url(world, **query) -> str:
    url = reverse("review:matrix", args=[world.rct.code])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def cell(response, subject_code: str, visit: str = "SCR"):
    row = next(r for r in response.context["rows"] if r.patient.subject_code == subject_code)
    return next(c for column in row.cells for c in column if c.visit.code == visit)


def states(visit_cell) -> dict[str, str]:
    return {form.code: str(form.state) for form in visit_cell.forms}


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# -- what the matrix shows -------------------------------------------------------------------


def test_each_cell_shows_its_forms_states(world, patient, sample, en_client):
    sample({patient: False})
    sdv_mark(by=world.monica, entry=entry(patient, "consent"))
    en_client.force_login(world.monica)

    response = en_client.get(matrix_url(world))

    scr = cell(response, patient.subject_code)
    assert states(scr) == {
        "demographics": "entered",  # not in the plan for this patient
        "consent": "verified",
        "medical_history": "not_entered",
        "mrss": "sdv_needed",
        "echocardiography": "not_entered",
        "safety_labs": "not_entered",
        "eligibility": "not_entered",
    }
    assert scr.counts == {"not_entered": 4, "entered": 1, "sdv_needed": 1, "verified": 1}
    assert response.context["backlog"] == 1
    text = response.content.decode()
    assert "SDV backlog: 1 form" in text
    assert f'data-testid="sdv-cell-{patient.subject_code}-SCR-1"' in text
    assert "Verify visit" in text


def test_the_backlog_counts_only_what_the_plan_requires(world, patient, en_client):
    other = patient_with_forms(world)
    seed = seed_where({patient: True, other: False})
    en_client.force_login(world.monica)
    with override_settings(SDV_SEED=seed):
        response = en_client.get(matrix_url(world))
    # The sampled patient: consent, demographics, mRSS; the other: consent, mRSS and the
    # serious adverse event, but not the demographics.
    assert response.context["backlog"] == 6
    rows = {row.patient.subject_code: row for row in response.context["rows"]}
    assert rows[patient.subject_code].sampled and rows[patient.subject_code].backlog == 3
    assert not rows[other.subject_code].sampled and rows[other.subject_code].backlog == 3
    assert states(cell(response, other.subject_code))["demographics"] == "entered"


def test_a_serious_event_is_in_the_safety_log_column_and_the_backlog(
    world, patient, sample, en_client
):
    sample({patient: False})
    event = AdverseEventFactory(
        patient=patient,
        serious=True,
        sae_hospitalisation=True,
        serious_aware_at=timezone.now(),
        aware_at=timezone.now() - timedelta(hours=1),
    )
    AdverseEventFactory(patient=patient)  # not serious, not sampled: not required
    en_client.force_login(world.monica)
    response = en_client.get(matrix_url(world))
    row = next(r for r in response.context["rows"] if r.patient == patient)
    assert [(f.label, str(f.state)) for f in row.log.forms] == [
        (f"AE-{event.number:03d}", "sdv_needed"),
        (f"AE-{event.number + 1:03d}", "entered"),
    ]
    assert response.context["backlog"] == 3  # consent, mRSS, the serious event
    ae = FormIndexEntry.objects.get(form_code="adverse_event", object_id=event.pk)
    assert reverse("review:form", args=[world.rct.code, ae.pk]) in response.content.decode()


def test_a_monitor_sees_only_the_sites_they_monitor(world, patient, en_client):
    strasbourg = PatientFactory(study=world.rct, site=world.str_, created_by=world.charlie)
    en_client.force_login(world.monica)
    shown = {r.patient.subject_code for r in en_client.get(matrix_url(world)).context["rows"]}
    assert patient.subject_code in shown and strasbourg.subject_code not in shown
    # Asking for Strasbourg by its code is an invalid choice, not a way in.
    response = en_client.get(matrix_url(world, site="STR"))
    assert strasbourg.subject_code not in {r.patient.subject_code for r in response.context["rows"]}


def test_a_data_manager_filters_by_site_and_status(world, patient, en_client):
    strasbourg = PatientFactory(study=world.rct, site=world.str_, created_by=world.charlie)
    Patient.objects.filter(pk=strasbourg.pk).update(status=Patient.Status.ENROLLED)
    en_client.force_login(world.diane)

    def shown(**query):
        rows = en_client.get(matrix_url(world, **query)).context["rows"]
        return {r.patient.subject_code for r in rows}

    assert {patient.subject_code, strasbourg.subject_code} <= shown()
    assert strasbourg.subject_code in shown(site="STR")
    assert all(code.startswith("STR-") for code in shown(site="STR"))
    assert shown(status="enrolled") == {strasbourg.subject_code}
    assert patient.subject_code in shown(status="screening", site="BXP")


@pytest.mark.parametrize("persona", ["alice", "bob", "charlie", "rene"])
def test_site_staff_and_outsiders_have_no_matrix(world, en_client, persona):
    en_client.force_login(getattr(world, persona))
    expected = 404 if persona == "rene" else 403  # René is not in the trial at all
    assert en_client.get(matrix_url(world)).status_code == expected


# -- bulk SDV from the matrix ------------------------------------------------------------------


def test_bulk_sdv_of_a_visit_from_the_matrix(world, patient, sample, en_client):
    sample({patient: False})
    en_client.force_login(world.monica)
    scr = cell(en_client.get(matrix_url(world)), patient.subject_code)
    response = en_client.post(
        reverse("review:visit", args=[world.rct.code, scr.visit.pk]),
        {"versions": scr.expected_versions, "next": matrix_url(world)},
    )
    assert response.status_code == 302 and response.url == matrix_url(world)
    assert flash(response) == [f"2 forms of {patient.subject_code}, visit SCR, verified."]
    assert fresh(entry(patient, "consent")).review_state == "verified"
    assert fresh(entry(patient, "mrss")).review_state == "verified"
    after = cell(en_client.get(matrix_url(world)), patient.subject_code)
    assert after.due == [] and after.summary == CellState.VERIFIED


def test_a_bulk_sdv_of_data_changed_since_the_page_verifies_nothing(
    world, patient, sample, en_client
):
    sample({patient: False})
    en_client.force_login(world.monica)
    scr = cell(en_client.get(matrix_url(world)), patient.subject_code)
    crf_save(
        visit=scr.visit,
        form_code="mrss",
        values=mrss_values(face=2),
        by=world.alice,
        expected_version=1,
        reason="Face corrected",
    )
    response = en_client.post(
        reverse("review:visit", args=[world.rct.code, scr.visit.pk]),
        {"versions": scr.expected_versions},
    )
    assert response.status_code == 302
    assert flash(response) == [
        "Visit SCR was changed since you opened the page: read it again before verifying."
    ]
    assert not SdvMark.objects.exists()


def test_a_bulk_post_without_the_versions_seen_is_refused(world, patient, en_client):
    en_client.force_login(world.monica)
    visit = patient.visits.get(code="SCR")
    response = en_client.post(
        reverse("review:visit", args=[world.rct.code, visit.pk]), {"versions": "junk"}
    )
    assert flash(response) == ["This request does not say which forms you saw."]
    assert not SdvMark.objects.exists()


def test_another_sites_visit_and_form_are_not_found(world, en_client):
    strasbourg = patient_with_forms(world, site="str_")
    visit = strasbourg.visits.get(code="SCR")
    en_client.force_login(world.monica)
    post = en_client.post(reverse("review:visit", args=[world.rct.code, visit.pk]), {})
    assert post.status_code == 404
    consent = entry(strasbourg, "consent")
    assert (
        en_client.get(reverse("review:form", args=[world.rct.code, consent.pk])).status_code == 404
    )
    assert not SdvMark.objects.exists()


def test_an_investigator_posting_a_bulk_sdv_is_refused_with_the_reason(world, patient, en_client):
    en_client.force_login(world.alice)
    visit = patient.visits.get(code="SCR")
    response = en_client.post(
        reverse("review:visit", args=[world.rct.code, visit.pk]), {"versions": ""}
    )
    assert flash(response) == [
        "Your role does not allow you to verify source data here (monitor, data manager only)."
    ]
    assert not SdvMark.objects.exists()


# -- one form's SDV page ---------------------------------------------------------------------


def test_the_form_page_verifies_ticked_fields_then_the_rest(world, patient, en_client):
    mrss = entry(patient, "mrss")
    url = reverse("review:form", args=[world.rct.code, mrss.pk])
    en_client.force_login(world.monica)
    page = en_client.get(url)
    assert page.status_code == 200
    assert [row["name"] for row in page.context["rows"]][:3] == ["exam_date", "assessor", "face"]

    response = en_client.post(url, {"version": 1, "fields": "1", "field": ["face", "abdomen"]})
    assert response.status_code == 302
    assert fresh(mrss).review_state == ""
    page = en_client.get(url)
    assert {r["name"] for r in page.context["rows"] if r["verified"]} == {"face", "abdomen"}

    en_client.post(url, {"version": 1})
    assert fresh(mrss).review_state == "verified"
    assert "Verified by" in en_client.get(url).content.decode()


def test_the_form_page_refuses_a_stale_version(world, patient, en_client):
    mrss = entry(patient, "mrss")
    en_client.force_login(world.monica)
    response = en_client.post(
        reverse("review:form", args=[world.rct.code, mrss.pk]), {"version": 7}
    )
    assert flash(response) == [
        "Modified Rodnan skin score (mRSS) was changed since you opened the page: "
        "read it again before verifying."
    ]
    assert not SdvMark.objects.exists()


# -- the visit page ---------------------------------------------------------------------------


def test_the_visit_page_shows_monitors_the_sdv_and_its_reset(world, patient, sample, en_client):
    sample({patient: False})
    sdv_mark(by=world.monica, entry=entry(patient, "mrss"))
    crf_save(
        visit=patient.visits.get(code="SCR"),
        form_code="mrss",
        values=mrss_values(face=2),
        by=world.alice,
        expected_version=1,
        reason="Face corrected",
    )
    url = reverse("crfs:visit", args=[world.rct.code, patient.subject_code, "SCR", 1])
    en_client.force_login(world.monica)
    text = en_client.get(url).content.decode()
    assert 'data-testid="visit-sdv"' in text
    assert f"SDV reset: changed by {world.alice.get_full_name()}" in text
    assert "Verify the 2 forms the plan requires" in text  # consent and the changed mRSS

    en_client.force_login(world.alice)
    assert 'data-testid="visit-sdv"' not in en_client.get(url).content.decode()


def test_the_audit_trail_lists_the_sdv_marks(world, patient, en_client):
    sdv_mark(by=world.monica, entry=entry(patient, "consent"))
    en_client.force_login(world.monica)
    response = en_client.get(reverse("patients:audit", args=[world.rct.code, patient.subject_code]))
    assert response.status_code == 200
    assert "source data verified" in response.content.decode()


def test_the_cells_show_the_freezes_and_locks_over_whole_visits(world, patient, en_client):
    other = patient_with_forms(world)
    data_freeze(by=world.diane, reason="Interim analysis cut-off", patient=patient)
    data_lock(by=world.diane, reason="Audit of the screening", visit=other.visits.get(code="SCR"))
    # A form's own lock leaves the rest of its visit open: the cell does not show it.
    data_lock(by=world.diane, reason="Consent under review", entry=entry(patient, "consent"))
    en_client.force_login(world.monica)

    response = en_client.get(matrix_url(world))

    frozen, locked = cell(response, patient.subject_code), cell(response, other.subject_code)
    assert (frozen.frozen, frozen.locked) == (True, False)
    assert (locked.frozen, locked.locked) == (False, True)
    row = next(r for r in response.context["rows"] if r.patient == patient)
    assert row.log.frozen  # the casebook's freeze covers its safety log
    other_m0 = cell(response, other.subject_code, "M0")
    assert (other_m0.frozen, other_m0.locked) == (False, False)
    page = response.content.decode()
    assert 'data-lock="freeze"' in page and 'data-lock="lock"' in page
    # A locked visit takes no verification: the matrix offers no bulk SDV for it.
    assert f'action="{reverse("review:visit", args=[world.rct.code, locked.visit.pk])}"' not in page


def test_a_study_lock_marks_every_cell(world, patient, en_client):
    data_lock(by=world.diane, reason="Database lock for the final analysis", study=world.rct)
    en_client.force_login(world.diane)

    response = en_client.get(matrix_url(world))

    cells = [c for row in response.context["rows"] for column in row.cells for c in column]
    assert cells and all(c.locked for c in cells)


# -- query counts -----------------------------------------------------------------------------


# Session, user, the account's memberships (the SDV permission, the second factor), study,
# the study's protocol versions, the site asked for (the filter's check) and the sites
# offered, the patients counted and their page, their visits, which of them hold a valid
# signature, the freezes and locks over them, their form index entries (every form and the
# safety log, seriousness and AE numbers annotated), the queries not closed per visit, the
# backlog grouped by site, patient and form: 16, whatever the number of patients, visits,
# forms, locks and queries.
MATRIX_QUERIES = 16


@pytest.mark.parametrize("patients", [1, 50])
def test_the_matrix_costs_the_same_for_one_patient_and_fifty(
    world, en_client, django_assert_num_queries, patients
):
    made = [patient_with_forms(world) for _ in range(patients)]
    data_freeze(by=world.diane, reason="Interim analysis cut-off", site=world.bxp, study=world.rct)
    data_lock(by=world.diane, reason="Audit of the casebook", patient=made[0])
    en_client.force_login(world.diane)
    url = matrix_url(world, site="BXP")
    en_client.get(url)  # the session's first request updates it
    with django_assert_num_queries(MATRIX_QUERIES):
        response = en_client.get(url)
    assert len(response.context["rows"]) == min(patients + 3, 25)  # the world's 3 and ours
    assert response.context["backlog"] >= 3 * patients
