"""Investigator e-signatures (21 CFR 11.50, 11.70, 11.200): who may sign, what is signed,
the re-authentication, the refusals, and the void by any later change to the signed data."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, InternalError, ProgrammingError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from ecrf.audit.models import AuthEvent
from ecrf.crfs.models import form_model
from ecrf.crfs.services import crf_save
from ecrf.patients.models import FormIndexEntry, Patient, Visit
from ecrf.patients.visits import visit_record_date, visits_schedule_from_day0
from ecrf.review.locks import data_freeze, data_lock, data_unlock, study_lock_checklist
from ecrf.review.matrix import sdv_matrix
from ecrf.review.models import Signature
from ecrf.review.signatures import (
    SESSION_SIGNED,
    canonical_payload,
    casebook_sign,
    casebooks_awaiting_signature,
    signature_digest,
    signature_valid,
    visit_sign,
    visits_awaiting_signature,
)
from ecrf.safety.models import SaeReport
from ecrf.safety.services import (
    ae_create,
    ae_update,
    sae_acknowledge,
    sae_follow_up,
    sae_submit_initial,
)
from ecrf.scoring import mrss as mrss_scoring
from tests.factories import PASSWORD, PatientFactory
from tests.review.conftest import mrss_values, screened_at, screening_forms
from tests.safety.conftest import CONSENT_DAY, ae_values, consent, sae_values
from tests.walks.helpers import rct_pre_inclusion, screen

TODAY = date(2026, 12, 15)  # tests.clock.NOW


@pytest.fixture
def alice_client(client, world):
    client.force_login(world.alice)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def signable(world, alice_client) -> Patient:
    """A Bordeaux patient in screening whose pre-inclusion visit SCR is complete: every
    form entered through the screens, as the site does."""
    patient = screen(alice_client, world.rct, site="BXP", screening_date=CONSENT_DAY)
    rct_pre_inclusion(alice_client, patient, CONSENT_DAY)
    patient = Patient.objects.select_related("site", "protocol_version", "study").get(pk=patient.pk)
    assert patient.visits.get(code="SCR").status == Visit.Status.COMPLETE
    return patient


def scr(patient: Patient) -> Visit:
    return Visit.objects.select_related("patient__site", "patient__protocol_version").get(
        patient=patient, code="SCR"
    )


def mrss_instance(patient: Patient):
    return form_model("mrss").objects.get(visit__patient=patient, visit__code="SCR")


def correct_mrss(patient: Patient, *, by, score: int = 3):
    instance = mrss_instance(patient)
    values = {
        name: getattr(instance, name)
        for name in form_model("mrss").answer_fields()
        if not name.endswith("_id")
    }
    values["exam_date"] = instance.exam_date
    values["face"] = score
    return crf_save(
        visit=scr(patient),
        form_code="mrss",
        values=values,
        by=by,
        expected_version=instance.version,
        reason="Face score misread on the source",
    )


def fresh(signature: Signature) -> Signature:
    return Signature.objects.select_related("voided_by").get(pk=signature.pk)


# -- what is signed --------------------------------------------------------------------------


def test_an_investigator_signs_a_visit_with_who_when_meaning_and_the_digest(world, signable):
    signature = visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)

    signature = fresh(signature)
    assert signature.signer == world.alice
    assert signature.visit.code == "SCR"
    assert timezone.now() - signature.signed_at < timedelta(minutes=1)
    assert signature.meaning == "visit"
    assert signature.attestation == (
        "I attest that the data of this visit are accurate and complete."
    )
    assert signature.printed_name == world.alice.get_full_name()
    payload = canonical_payload(patient=signable, visit=scr(signable))
    assert signature.digest == hashlib.sha256(payload).hexdigest() == signature_digest(payload)
    entries = FormIndexEntry.objects.filter(visit__patient=signable, visit__code="SCR")
    assert sorted(signature.scope["forms"]) == sorted(
        [e.form_code, e.object_id, e.version] for e in entries
    )
    assert signature_valid(signature)
    # Audited in the signature's transaction, with its reason.
    event = signature.events.get()
    assert event.pgh_label == "insert"
    assert event.pgh_context == {"reason": "electronic signature", "user": world.alice.pk}


def test_the_canonical_payload_is_sorted_json_of_exactly_the_visit_forms(world, signable):
    payload = canonical_payload(patient=signable, visit=scr(signable))
    data = json.loads(payload)
    assert payload == json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    forms = data["visit"]["forms"]
    assert [f["form"] for f in forms] == sorted(f["form"] for f in forms)
    assert {f["form"] for f in forms} == {
        "consent",
        "demographics",
        "medical_history",
        "mrss",
        "echocardiography",
        "safety_labs",
        "eligibility",
    }
    mrss = next(f for f in forms if f["form"] == "mrss")
    assert mrss["id"] == mrss_instance(signable).pk
    assert mrss["version"] == 1
    assert mrss["values"]["face"] == 2
    assert data["visit"]["visit_date"] == CONSENT_DAY.isoformat()
    # The same data give the same bytes.
    assert canonical_payload(patient=signable, visit=scr(signable)) == payload


def test_a_casebook_signature_covers_every_visit_that_took_place_and_the_log(world, signable):
    event = ae_create(patient=signable, by=world.alice, values=ae_values())
    signature = casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    assert signature.visit is None
    assert signature.meaning == "casebook"
    assert signature.attestation == (
        "I attest that the data of this casebook are accurate and complete."
    )
    data = json.loads(canonical_payload(patient=signable))
    assert [v["code"] for v in data["visits"]] == ["SCR"]
    assert [(f["form"], f["id"]) for f in data["log"]] == [("adverse_event", event.pk)]
    assert data["log"][0]["values"]["term"] == "Nausea"
    assert signature.scope["visits"] == [scr(signable).pk]


# -- who may sign ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bob", "monica", "diane", "charlie", "rene"])
def test_only_the_site_investigator_signs(world, signable, name):
    """A coordinator, a monitor, a data manager, another site's investigator, a member of
    another study: refused, nothing saved."""
    person = getattr(world, name)
    with pytest.raises(PermissionDenied):
        visit_sign(by=person, visit=scr(signable), password=PASSWORD)
    with pytest.raises(PermissionDenied):
        casebook_sign(by=person, patient=signable, password=PASSWORD)
    assert not Signature.objects.exists()


def test_a_coordinator_refusal_names_the_investigator(world, signable):
    with pytest.raises(PermissionDenied) as refused:
        visit_sign(by=world.bob, visit=scr(signable), password=PASSWORD)
    assert str(refused.value) == (
        "Your role does not allow you to sign a visit or a casebook here (investigator only)."
    )


# -- the re-authentication -------------------------------------------------------------------


def test_a_wrong_password_is_refused_saves_nothing_and_is_recorded_as_a_wrong_reentry(
    world, signable
):
    failed = AuthEvent.objects.filter(kind=AuthEvent.Kind.REAUTH_FAILED, username="alice")
    assert not failed.exists()
    with pytest.raises(ValidationError) as refused:
        visit_sign(by=world.alice, visit=scr(signable), password="not-my-password")
    assert refused.value.message_dict == {"password": ["Password: your password is not correct."]}
    assert not Signature.objects.exists()
    assert failed.count() == 1


def test_an_empty_password_is_refused(world, signable):
    with pytest.raises(ValidationError) as refused:
        casebook_sign(by=world.alice, patient=signable, password="")
    assert refused.value.message_dict == {"password": ["Password: type your password."]}


def test_the_username_given_must_be_the_signers_own(world, signable):
    with pytest.raises(ValidationError) as refused:
        visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD, username="charlie")
    assert refused.value.message_dict == {
        "username": [
            "Username: this is not the username of the person signed in; only you can sign "
            "in your name."
        ]
    }
    assert not Signature.objects.exists()


def test_the_first_signing_of_a_session_asks_for_the_username_then_the_password_only(
    world, signable, alice_client
):
    visit_url = reverse("review:visit_sign", args=[world.rct.code, signable.subject_code, "SCR", 1])
    page = alice_client.get(visit_url)
    assert page.status_code == 200
    assert "username" in page.context["form"].fields
    body = page.content.decode()
    assert "I attest that the data of this visit are accurate and complete." in body
    assert world.alice.get_full_name() in body
    # Without the username, the first signing is refused.
    refused = alice_client.post(visit_url, {"password": PASSWORD})
    assert refused.status_code == 400
    assert refused.context["form"].errors["username"] == [
        "Username: type your username; the first signature of a session asks for both your "
        "username and your password."
    ]
    assert not Signature.objects.exists()
    signed = alice_client.post(visit_url, {"username": "alice", "password": PASSWORD})
    assert signed.status_code == 302
    assert alice_client.session[SESSION_SIGNED] is True
    # The casebook, next in the same session: the password alone.
    casebook_url = reverse("review:casebook_sign", args=[world.rct.code, signable.subject_code])
    page = alice_client.get(casebook_url)
    assert "username" not in page.context["form"].fields
    assert alice_client.post(casebook_url, {"password": PASSWORD}).status_code == 302
    assert Signature.objects.filter(patient=signable).count() == 2


def test_a_wrong_password_on_the_page_is_a_form_error_not_a_500(world, signable, alice_client):
    url = reverse("review:visit_sign", args=[world.rct.code, signable.subject_code, "SCR", 1])
    response = alice_client.post(url, {"username": "alice", "password": "wrong"})
    assert response.status_code == 400
    assert response.context["form"].errors["password"] == [
        "Password: your password is not correct."
    ]
    assert not Signature.objects.exists()


# -- the refusals ----------------------------------------------------------------------------


def test_a_casebook_with_forms_in_progress_or_missing_is_refused_with_the_list(world):
    """Consent and demographics at SCR, the mRSS in progress: the others are listed."""
    patient = screening_forms(screened_at(world, world.bxp, by=world.alice), by=world.alice)
    instance = mrss_instance(patient)
    crf_save(
        visit=scr(patient),
        form_code="mrss",
        values=mrss_values(**dict.fromkeys(mrss_scoring.AREAS[:3], None)),
        by=world.alice,
        expected_version=instance.version,
        reason="Areas to be re-examined",
    )
    assert FormIndexEntry.objects.get(object_id=instance.pk, form_code="mrss").status == (
        "in_progress"
    )
    with pytest.raises(ValidationError) as refused:
        casebook_sign(by=world.alice, patient=patient, password=PASSWORD)
    assert refused.value.messages == [
        f"The casebook of {patient.subject_code} cannot be signed until every form is "
        "complete: SCR: Modified Rodnan skin score (mRSS) (in progress); SCR: Medical "
        "history (not entered); SCR: Echocardiography (not entered); SCR: Safety laboratory "
        "tests (not entered); SCR: Eligibility checklist (not entered)."
    ]
    with pytest.raises(ValidationError) as refused:
        visit_sign(by=world.alice, visit=scr(patient), password=PASSWORD)
    assert refused.value.messages[0].startswith(
        "Visit SCR cannot be signed until its forms are complete: Modified Rodnan skin score "
        "(mRSS) (in progress); Medical history (not entered)"
    )
    assert not Signature.objects.exists()


def test_a_casebook_whose_past_visits_were_not_entered_is_refused(world, signable):
    """Included on 29 September: M0 and M1's windows have closed, nothing entered."""
    Patient.objects.filter(pk=signable.pk).update(
        status=Patient.Status.ENROLLED, day0_date=date(2026, 9, 29)
    )
    visits_schedule_from_day0(patient=Patient.objects.get(pk=signable.pk))
    with pytest.raises(ValidationError) as refused:
        casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    message = refused.value.messages[0]
    assert "M0: the window has closed; enter the visit or declare it missed." in message
    assert "M1: the window has closed; enter the visit or declare it missed." in message
    assert "M3" not in message  # its window is still open


def test_a_pending_sae_report_keeps_the_casebook_from_being_signed(world, signable):
    ae_create(patient=signable, by=world.alice, values=sae_values())
    with pytest.raises(ValidationError) as refused:
        casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    assert "SAE report of AE-001 (not submitted)" in refused.value.messages[0]


def test_a_visit_not_taken_place_is_refused(world, signable):
    Patient.objects.filter(pk=signable.pk).update(status=Patient.Status.ENROLLED, day0_date=TODAY)
    visits_schedule_from_day0(patient=Patient.objects.get(pk=signable.pk))
    m0 = Visit.objects.get(patient=signable, code="M0")
    with pytest.raises(ValidationError) as refused:
        visit_sign(by=world.alice, visit=m0, password=PASSWORD)
    assert refused.value.messages == ["Visit M0 has not taken place: there is nothing to sign."]


def test_locked_data_are_refused_and_frozen_data_may_be_signed(world, signable):
    lock = data_lock(by=world.diane, visit=scr(signable), reason="Interim analysis cut-off")
    with pytest.raises(ValidationError) as refused:
        visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    assert refused.value.messages[0].startswith(f"Visit SCR of {signable.subject_code} is locked")
    with pytest.raises(ValidationError):
        casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    assert not Signature.objects.exists()
    data_unlock(by=world.diane, lock=lock, reason="Locked by mistake, the cut-off is later")
    data_freeze(by=world.diane, patient=signable, reason="Interim analysis cut-off")
    assert visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD).pk


def test_a_signed_visit_is_not_signed_twice(world, signable):
    visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    with pytest.raises(ValidationError) as refused:
        visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    assert refused.value.messages == [
        f"Visit SCR is already signed by {world.alice.get_full_name()} on 2026-12-15 10:00 CET; "
        "a change to its data voids the signature, and it can then be signed again."
    ]


# -- a change voids --------------------------------------------------------------------------


def test_a_crf_correction_voids_the_visit_and_casebook_signatures(world, signable):
    visit = visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    casebook = casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    correct_mrss(signable, by=world.bob)
    for signature in (fresh(visit), fresh(casebook)):
        assert timezone.now() - signature.voided_at < timedelta(minutes=1)
        assert signature.voided_by == world.bob
        assert signature.void_reason == "a change to Modified Rodnan skin score (mRSS) SCR"
        assert not signature_valid(signature)
        # In the audit trail, with the change's reason.
        event = signature.events.order_by("pgh_id").last()
        assert event.pgh_label == "update"
        assert event.pgh_context["reason"] == "Face score misread on the source"
        assert event.pgh_context["user"] == world.bob.pk


def test_re_signing_after_a_void_is_a_new_signature(world, signable):
    first = visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    correct_mrss(signable, by=world.alice)
    second = visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    assert second.pk != first.pk
    assert fresh(first).voided_at is not None
    assert signature_valid(second)
    assert second.digest != first.digest


def test_a_change_at_another_visit_leaves_the_visit_signature(world, signable):
    """An adverse event is in the casebook, not in SCR: only the casebook's is voided."""
    visit = visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    casebook = casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    ae_create(patient=signable, by=world.bob, values=ae_values())
    assert fresh(visit).voided_at is None
    assert fresh(casebook).void_reason == "a change to adverse event AE-001"
    assert fresh(casebook).voided_by == world.bob


def test_an_adverse_event_edit_voids_the_casebook_signature(world, signable):
    event = ae_create(patient=signable, by=world.alice, values=ae_values())
    casebook = casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    ae_update(
        event=event,
        by=world.alice,
        values=ae_values(ctcae_grade=2),
        expected_version=event.version,
        reason="Grade reassessed at the visit",
    )
    casebook = fresh(casebook)
    assert casebook.void_reason == "a change to adverse event AE-001"
    assert casebook.voided_by == world.alice


def test_an_sae_report_voids_the_casebook_signature(world, signable):
    event = ae_create(patient=signable, by=world.alice, values=sae_values())
    sae_submit_initial(report=event.sae_reports.get(), by=world.alice, password=PASSWORD)
    casebook = casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    sae_follow_up(event=event, by=world.alice, password=PASSWORD, narrative="Discharged on day 5.")
    casebook = fresh(casebook)
    assert casebook.voided_at is not None
    assert casebook.void_reason in {
        "a change to SAE report of AE-001",
        "a change to adverse event AE-001",
    }
    assert SaeReport.objects.filter(adverse_event=event).count() == 2


def test_a_visit_date_voids_the_casebook_signature(world, signable):
    """Included today: M0 is planned, its window open; dated, it enters the casebook."""
    Patient.objects.filter(pk=signable.pk).update(status=Patient.Status.ENROLLED, day0_date=TODAY)
    visits_schedule_from_day0(patient=Patient.objects.get(pk=signable.pk))
    casebook = casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    visit_record_date(
        visit=Visit.objects.get(patient=signable, code="M0"), by=world.bob, visit_date=TODAY
    )
    casebook = fresh(casebook)
    assert casebook.void_reason == "a change to the visit date of M0"
    assert casebook.voided_by == world.bob


def test_a_save_that_changes_nothing_signed_leaves_the_signatures(world, signable):
    """A save of another patient's data, or nothing at all: the signature stands."""
    casebook = casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    consent(screened_at(world, world.bxp, by=world.alice), by=world.alice)
    assert fresh(casebook).voided_at is None
    assert signature_valid(fresh(casebook))


def test_signature_valid_detects_a_change_behind_the_services_back(world, signable):
    signature = visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    # The total follows the area (a database check refuses a stale one).
    form_model("mrss").objects.filter(pk=mrss_instance(signable).pk).update(
        face=3, total=F("total") + 3 - F("face")
    )
    signature = fresh(signature)
    assert signature.voided_at is None  # no service saw it
    assert not signature_valid(signature)


# -- the database keeps them ---------------------------------------------------------------


def test_the_database_refuses_to_edit_or_delete_a_signature(world, signable):
    signature = visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    for change in (
        lambda: Signature.objects.filter(pk=signature.pk).update(digest="0" * 64),
        lambda: Signature.objects.filter(pk=signature.pk).update(signer=world.bob),
        lambda: Signature.objects.filter(pk=signature.pk).delete(),
    ):
        with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
            change()
    correct_mrss(signable, by=world.alice)  # voided once
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        Signature.objects.filter(pk=signature.pk).update(void_reason="another reason")
    with pytest.raises(IntegrityError), transaction.atomic():
        Signature.objects.create(
            patient=signable,
            signer=world.alice,
            meaning="visit",
            attestation="x",
            printed_name="x",
            digest="0" * 64,
            scope={},
        )


# -- the screens -----------------------------------------------------------------------------


def test_the_sign_pages_are_404_for_another_site_and_403_for_a_coordinator(world, signable, client):
    urls = [
        reverse("review:visit_sign", args=[world.rct.code, signable.subject_code, "SCR", 1]),
        reverse("review:casebook_sign", args=[world.rct.code, signable.subject_code]),
    ]
    client.force_login(world.charlie)
    for url in urls + [
        reverse("review:casebook_print", args=[world.rct.code, signable.subject_code])
    ]:
        assert client.get(url).status_code == 404
        assert client.post(url, {"password": PASSWORD}).status_code == 404
    client.force_login(world.bob)
    for url in urls:
        assert client.get(url).status_code == 403
        assert client.post(url, {"username": "bob", "password": PASSWORD}).status_code == 403
    assert not Signature.objects.exists()


def test_the_sign_page_says_why_a_casebook_cannot_be_signed(world, alice_client):
    patient = screening_forms(screened_at(world, world.bxp, by=world.alice), by=world.alice)
    url = reverse("review:casebook_sign", args=[world.rct.code, patient.subject_code])
    page = alice_client.get(url)
    assert page.status_code == 200
    assert "SCR: Medical history (not entered)" in page.context["refusal"]
    response = alice_client.post(url, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert not Signature.objects.exists()


def test_the_visit_and_casebook_pages_show_the_signature_and_its_void(
    world, signable, alice_client
):
    visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    visit_page = reverse("crfs:visit", args=[world.rct.code, signable.subject_code, "SCR", 1])
    body = alice_client.get(visit_page).content.decode()
    assert f"Signed by {world.alice.get_full_name()}" in body
    assert "2026-12-15 10:00 CET" in body and "2026-12-15 09:00 UTC" in body
    assert "I attest that the data of this visit are accurate and complete." in body
    assert 'data-testid="sign"' not in body  # signed: no button
    correct_mrss(signable, by=world.bob)
    for url in (
        visit_page,
        reverse("patients:detail", args=[world.rct.code, signable.subject_code]),
    ):
        body = alice_client.get(url).content.decode()
        assert "<del>" in body
        assert (
            "Signature voided by a change to Modified Rodnan skin score (mRSS) SCR on "
            f"2026-12-15 10:00 CET by {world.bob.get_full_name()}." in body
        )
    # Voided, the visit can be signed again: the button is back for the investigator only.
    assert 'data-testid="sign"' in alice_client.get(visit_page).content.decode()
    alice_client.force_login(world.bob)
    assert 'data-testid="sign"' not in alice_client.get(visit_page).content.decode()


def test_a_form_page_shows_the_signatures_over_its_data_and_no_card_before(
    world, signable, alice_client
):
    form_page = reverse("crfs:form", args=[world.rct.code, signable.subject_code, "SCR", 1, "mrss"])
    assert 'data-testid="signatures"' not in alice_client.get(form_page).content.decode()
    visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    body = alice_client.get(form_page).content.decode()
    assert f"Signed by {world.alice.get_full_name()}" in body
    assert "I attest that the data of this visit are accurate and complete." in body
    assert 'data-testid="sign"' not in body  # signing is on the visit page
    correct_mrss(signable, by=world.bob)
    body = alice_client.get(form_page).content.decode()
    assert "<del>" in body and "Signature voided by a change to" in body


def test_the_printable_casebook_shows_values_labels_log_and_signatures(
    world, signable, alice_client
):
    ae_create(patient=signable, by=world.alice, values=ae_values())
    casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    url = reverse("review:casebook_print", args=[world.rct.code, signable.subject_code])
    alice_client.force_login(world.monica)  # a monitor reads it too
    response = alice_client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert "css/print.css" in body
    assert "<style" not in body and "onclick" not in body
    assert 'data-testid="print-visit-SCR-1"' in body
    assert "Modified Rodnan skin score (mRSS)" in body
    assert "Dr Martin" in body  # the mRSS assessor: a value under its label
    assert "AE-001 · Nausea" in body
    assert "I attest that the data of this casebook are accurate and complete." in body
    assert f"Signed by {world.alice.get_full_name()}" in body


# -- what awaits a signature -------------------------------------------------------------------


def test_casebooks_awaiting_signature_are_the_ended_or_done_ones_without_a_valid_one(
    world, signable
):
    assert list(casebooks_awaiting_signature(study=world.rct)) == []
    Patient.objects.filter(pk=signable.pk).update(status=Patient.Status.COMPLETED, end_date=TODAY)
    assert list(casebooks_awaiting_signature(study=world.rct)) == [signable]
    assert list(casebooks_awaiting_signature(study=world.rct, site=world.str_)) == []
    assert list(visits_awaiting_signature(study=world.rct)) == [scr(signable)]
    items = {item.code: item for item in study_lock_checklist(world.rct)}
    assert items["signatures"].count == 1
    casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    assert list(casebooks_awaiting_signature(study=world.rct)) == []
    visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    assert list(visits_awaiting_signature(study=world.rct)) == []


# Session, user, the account's memberships (the permission for the sign buttons, the
# second factor), study, the casebooks awaiting counted and their page (with their site,
# among the patients the user sees), the visits awaiting counted (none here, so no page to
# read): 7, whatever the number of casebooks.
AWAITING_QUERIES = 7


@pytest.mark.parametrize("patients", [1, 50])
def test_the_awaiting_page_costs_the_same_for_one_casebook_and_fifty(
    world, client, django_assert_num_queries, patients
):
    ended = [
        PatientFactory(study=world.rct, site=world.bxp, created_by=world.alice)
        for _ in range(patients)
    ]
    Patient.objects.filter(pk__in=[p.pk for p in ended]).update(
        status=Patient.Status.COMPLETED, end_date=TODAY
    )
    PatientFactory(study=world.rct, site=world.str_, created_by=world.charlie, status="completed")
    client.force_login(world.alice)
    url = reverse("review:signatures", args=[world.rct.code])
    client.get(url)
    with django_assert_num_queries(AWAITING_QUERIES):
        response = client.get(url)
    # Strasbourg's casebook is not Alice's to see.
    assert [p.subject_code for p in response.context["casebooks"]] == sorted(
        p.subject_code for p in ended
    )


def test_the_sdv_matrix_marks_the_signed_visits(world, signable):
    visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    patients = list(Patient.objects.filter(pk=signable.pk).select_related("protocol_version"))
    (row,) = sdv_matrix(patients)
    cells = {cell.visit.code: cell for column in row.cells for cell in column}
    assert cells["SCR"].signed is True


def test_the_sponsors_acknowledgement_changes_no_signed_data(world, signable):
    """The sponsor's receipt of an SAE report is not the site's data: the casebook's
    signature stands."""
    event = ae_create(patient=signable, by=world.alice, values=sae_values())
    sae_submit_initial(report=event.sae_reports.get(), by=world.alice, password=PASSWORD)
    casebook = casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    sae_acknowledge(report=event.sae_reports.get(), by=world.diane)
    assert fresh(casebook).voided_at is None
    assert signature_valid(fresh(casebook))


def test_the_signature_and_its_void_are_in_the_patients_audit_trail(world, signable, client):
    visit_sign(by=world.alice, visit=scr(signable), password=PASSWORD)
    correct_mrss(signable, by=world.bob)
    client.force_login(world.monica)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    response = client.get(reverse("patients:audit", args=[world.rct.code, signable.subject_code]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "electronic signature" in body
    assert "a change to Modified Rodnan skin score (mRSS) SCR" in body


def test_the_adverse_event_pages_show_the_casebook_signature_and_its_void(
    world, signable, alice_client
):
    event = ae_create(patient=signable, by=world.alice, values=ae_values())
    casebook_sign(by=world.alice, patient=signable, password=PASSWORD)
    pages = [
        reverse("safety:event", args=[world.rct.code, signable.subject_code, event.number]),
        reverse("safety:log", args=[world.rct.code, signable.subject_code]),
    ]
    for url in pages:
        body = alice_client.get(url).content.decode()
        assert "I attest that the data of this casebook are accurate and complete." in body
        assert f"Signed by {world.alice.get_full_name()}" in body
    ae_update(
        event=event,
        by=world.alice,
        values=ae_values(ctcae_grade=2),
        expected_version=event.version,
        reason="Grade reassessed at the visit",
    )
    for url in pages:
        body = alice_client.get(url).content.decode()
        assert "Signature voided by a change to adverse event AE-001" in body
