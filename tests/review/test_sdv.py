"""Source data verification: marking forms, whole or by field, a visit at once, the reset
when data change through any save service, and every refusal with its message."""

from __future__ import annotations

from datetime import timedelta

import pghistory.models
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from ecrf.core.errors import StaleVersion
from ecrf.crfs.services import crf_save
from ecrf.patients.models import FormIndexEntry
from ecrf.review.models import SdvMark
from ecrf.review.sdv import entry_verified_fields, sdv_fields, sdv_mark, sdv_mark_visit
from ecrf.review.states import ReviewState, TransitionRefused, transition_check
from ecrf.safety.services import ae_create, ae_update, sae_submit_initial
from tests.factories import PASSWORD
from tests.review.conftest import (
    entry,
    fresh,
    mrss_values,
    screened_at,
    screening_forms,
)
from tests.safety.conftest import ae_values, sae_values

pytestmark = pytest.mark.django_db


def marks(entry: FormIndexEntry) -> list[tuple[str, str, int, str]]:
    return [
        (m.kind, m.field, m.version, m.by.username if m.by else "")
        for m in SdvMark.objects.filter(entry=entry).select_related("by").order_by("pk")
    ]


def verified_now(entry: FormIndexEntry) -> set[str]:
    """The fields of the entry's current version verified, as the services read them."""
    return entry_verified_fields(fresh(entry), SdvMark.objects.filter(entry=entry))


# -- verifying -------------------------------------------------------------------------------


def test_a_monitor_verifies_a_whole_form_audited(world, patient):
    consent = entry(patient, "consent")
    sdv_mark(by=world.monica, entry=consent, expected_version=1)

    consent = fresh(consent)
    assert (consent.review_state, consent.review_version) == ("verified", 1)
    assert (consent.verified_by, consent.verified_at) == (world.monica, consent.verified_at)
    assert consent.verified_at is not None
    assert marks(consent) == [("verify", "", 1, "monica")]
    (event,) = pghistory.models.Events.objects.filter(
        pgh_obj_model="review.SdvMark", pgh_label="insert"
    )
    assert event.pgh_context["reason"] == "source data verified"
    assert event.pgh_context["user"] == world.monica.pk


def test_a_data_manager_verifies_too(world, patient):
    sdv_mark(by=world.diane, entry=entry(patient, "consent"))
    assert fresh(entry(patient, "consent")).review_state == "verified"


def test_field_by_field_the_form_is_verified_once_every_field_is(world, patient):
    mrss = entry(patient, "mrss")
    fields = sdv_fields("mrss")
    sdv_mark(by=world.monica, entry=mrss, fields=["face", "assessor"], expected_version=1)

    mrss = fresh(mrss)
    assert mrss.review_state == "" and mrss.review_version == 1  # partly verified
    assert verified_now(mrss) == {"face", "assessor"}

    rest = [name for name in fields if name not in ("face", "assessor")]
    sdv_mark(by=world.monica, entry=mrss, fields=rest, expected_version=1)
    mrss = fresh(mrss)
    assert (mrss.review_state, mrss.review_version, mrss.verified_by) == (
        "verified",
        1,
        world.monica,
    )


def test_bulk_visit_verifies_every_complete_form_the_plan_requires(world, patient, sample):
    sample({patient: False})  # demographics are sampled: not required for this patient
    scr = patient.visits.get(code="SCR")
    verified = sdv_mark_visit(by=world.monica, visit=scr)

    assert sorted(e.form_code for e in verified) == ["consent", "mrss"]
    states = dict(FormIndexEntry.objects.filter(visit=scr).values_list("form_code", "review_state"))
    assert states == {"consent": "verified", "mrss": "verified", "demographics": ""}


def test_bulk_visit_of_a_sampled_patient_verifies_every_form(world, patient, sample):
    sample({patient: True})
    scr = patient.visits.get(code="SCR")
    verified = sdv_mark_visit(by=world.diane, visit=scr)
    assert sorted(e.form_code for e in verified) == ["consent", "demographics", "mrss"]


def test_bulk_visit_skips_what_is_in_progress_and_what_is_verified(world, patient, sample):
    sample({patient: True})
    scr = patient.visits.get(code="SCR")
    crf_save(
        visit=scr,
        form_code="echocardiography",
        values={"exam_date": patient.consent_date},  # no LVEF yet: in progress
        by=world.alice,
        expected_version=0,
    )
    sdv_mark(by=world.monica, entry=entry(patient, "consent"))
    verified = sdv_mark_visit(by=world.monica, visit=scr)
    assert sorted(e.form_code for e in verified) == ["demographics", "mrss"]
    assert fresh(entry(patient, "echocardiography")).review_state == ""


# -- a change resets -------------------------------------------------------------------------


def test_a_correction_through_crf_save_resets_only_the_fields_it_changed(world, patient):
    mrss = entry(patient, "mrss")
    sdv_mark(by=world.monica, entry=mrss, expected_version=1)

    crf_save(
        visit=patient.visits.get(code="SCR"),
        form_code="mrss",
        values=mrss_values(face=3),
        by=world.alice,
        expected_version=1,
        reason="Face score misread on the source",
    )

    mrss = fresh(mrss)
    assert (mrss.version, mrss.review_state, mrss.review_version) == (2, "", 2)
    assert mrss.sdv_reset_by == world.alice
    assert timezone.now() - mrss.sdv_reset_at < timedelta(minutes=1)
    assert marks(mrss) == [("verify", "", 1, "monica"), ("reset", "face", 2, "alice")]
    assert verified_now(mrss) == set(sdv_fields("mrss")) - {"face"}
    # The reset is in the audit trail, with the change's reason and user.
    reset = pghistory.models.Events.objects.filter(
        pgh_obj_model="review.SdvMark", pgh_label="insert"
    ).order_by("-pgh_id")[0]
    assert reset.pgh_context["reason"] == "Face score misread on the source"
    assert reset.pgh_context["user"] == world.alice.pk

    # The monitor verifies what changed, and the form is verified again.
    sdv_mark(by=world.monica, entry=mrss, fields=["face"], expected_version=2)
    assert fresh(mrss).review_state == "verified"


def test_a_change_to_a_partly_verified_form_resets_only_verified_fields(world, patient):
    mrss = entry(patient, "mrss")
    sdv_mark(by=world.monica, entry=mrss, fields=["face"])

    crf_save(
        visit=patient.visits.get(code="SCR"),
        form_code="mrss",
        values=mrss_values(abdomen=2),  # a field nobody verified yet
        by=world.alice,
        expected_version=1,
        reason="Abdomen score corrected",
    )

    mrss = fresh(mrss)
    assert (mrss.review_state, mrss.review_version, mrss.sdv_reset_at) == ("", 2, None)
    assert verified_now(mrss) == {"face"}
    assert [kind for kind, *_ in marks(mrss)] == ["verify"]


def test_changing_every_verified_field_resets_the_whole_form(world, patient):
    consent = entry(patient, "consent")
    sdv_mark(by=world.monica, entry=consent, fields=["consent_version"])
    crf_save(
        visit=patient.visits.get(code="SCR"),
        form_code="consent",
        values={"consent_version": "2.2"},
        by=world.alice,
        expected_version=1,
        reason="Version misread",
    )
    consent = fresh(consent)
    assert (consent.review_state, consent.review_version) == ("", None)
    assert marks(consent)[-1] == ("reset", "", 2, "alice")
    assert verified_now(consent) == set()


def test_an_edit_of_a_serious_event_resets_its_sdv_visibly(world, patient, sample, en_client):
    sample({patient: False})  # a serious event is verified whatever the sample
    event = ae_create(patient=patient, by=world.alice, values=sae_values())
    ae = FormIndexEntry.objects.get(form_code="adverse_event", object_id=event.pk)
    sdv_mark(by=world.monica, entry=ae, expected_version=1)

    ae_update(
        event=event,
        by=world.alice,
        values=sae_values(ctcae_grade=4, sae_life_threatening=True),
        expected_version=1,
        reason="Worsened: now life-threatening",
    )

    ae = fresh(ae)
    assert (ae.version, ae.review_state, ae.review_version) == (2, "", 2)
    assert ae.sdv_reset_by == world.alice
    assert sorted(field for kind, field, *_ in marks(ae) if kind == "reset") == [
        "ctcae_grade",
        "sae_life_threatening",
    ]
    en_client.force_login(world.monica)
    page = en_client.get(reverse("review:form", args=[world.rct.code, ae.pk]))
    when = date_format(timezone.localtime(ae.sdv_reset_at), "SHORT_DATETIME_FORMAT")
    text = page.content.decode()
    assert f"SDV reset: changed by {world.alice.get_full_name()} on {when}" in text
    assert "(CTCAE grade, life-threatening)" in text


def test_a_non_serious_event_is_verified_only_for_a_sampled_patient(world, patient, sample):
    event = ae_create(patient=patient, by=world.alice, values=ae_values())
    ae = FormIndexEntry.objects.get(form_code="adverse_event", object_id=event.pk)
    sample({patient: False})
    with pytest.raises(ValidationError, match="not in the SDV plan"):
        sdv_mark(by=world.monica, entry=ae)
    sample({patient: True})
    sdv_mark(by=world.monica, entry=ae)
    assert fresh(ae).review_state == "verified"


def test_a_submitted_sae_report_is_verified_as_a_whole(world, patient):
    event = ae_create(patient=patient, by=world.alice, values=sae_values())
    report = sae_submit_initial(report=event.sae_reports.get(), by=world.alice, password=PASSWORD)
    sae = FormIndexEntry.objects.get(form_code="sae_report", object_id=report.pk)
    assert sdv_fields("sae_report") == ("",)
    sdv_mark(by=world.monica, entry=sae)
    assert fresh(sae).review_state == "verified"


# -- refusals --------------------------------------------------------------------------------


def test_a_form_the_plan_does_not_require_is_refused(world, patient, sample):
    sample({patient: False})
    with pytest.raises(ValidationError) as refused:
        sdv_mark(by=world.monica, entry=entry(patient, "demographics"))
    assert refused.value.messages == [
        "Demographics is not in the SDV plan for this patient: there is nothing to verify."
    ]
    assert not SdvMark.objects.exists()


def test_a_form_not_complete_is_refused(world, patient, sample):
    sample({patient: True})  # echocardiography is in the plan for a sampled patient
    crf_save(
        visit=patient.visits.get(code="SCR"),
        form_code="echocardiography",
        values={"exam_date": patient.consent_date},  # no LVEF yet
        by=world.alice,
        expected_version=0,
    )
    with pytest.raises(ValidationError) as refused:
        sdv_mark(by=world.monica, entry=entry(patient, "echocardiography"))
    assert refused.value.messages == [
        "Echocardiography is in progress: only a complete form is verified."
    ]


def test_a_version_changed_since_the_page_was_read_is_refused(world, patient):
    mrss = entry(patient, "mrss")
    crf_save(
        visit=patient.visits.get(code="SCR"),
        form_code="mrss",
        values=mrss_values(face=2),
        by=world.alice,
        expected_version=1,
        reason="Face corrected",
    )
    with pytest.raises(StaleVersion):
        sdv_mark(by=world.monica, entry=mrss, expected_version=1)
    assert not SdvMark.objects.exists()


def test_a_form_already_verified_is_refused(world, patient):
    consent = entry(patient, "consent")
    sdv_mark(by=world.monica, entry=consent)
    with pytest.raises(ValidationError) as refused:
        sdv_mark(by=world.diane, entry=consent)
    assert refused.value.messages == ["Informed consent is already verified."]


def test_unknown_fields_are_refused(world, patient):
    with pytest.raises(ValidationError) as refused:
        sdv_mark(by=world.monica, entry=entry(patient, "mrss"), fields=["face", "total"])
    assert refused.value.messages == ["Not fields of this form: total."]


def test_a_visit_with_nothing_left_to_verify_is_refused(world, patient, sample):
    sample({patient: False})
    scr = patient.visits.get(code="SCR")
    sdv_mark_visit(by=world.monica, visit=scr)
    with pytest.raises(ValidationError) as refused:
        sdv_mark_visit(by=world.monica, visit=scr)
    assert refused.value.messages == [
        "Nothing to verify at visit SCR: the forms the SDV plan requires are verified, "
        "or not complete yet."
    ]


def test_bulk_visit_refuses_a_form_the_page_did_not_show(world, patient, sample):
    sample({patient: False})
    scr = patient.visits.get(code="SCR")
    consent = entry(patient, "consent")
    with pytest.raises(StaleVersion):
        sdv_mark_visit(by=world.monica, visit=scr, expected_versions={consent.pk: 1})
    assert not SdvMark.objects.exists()


@pytest.mark.parametrize("persona", ["alice", "bob", "charlie", "rene"])
def test_site_staff_and_outsiders_cannot_verify(world, patient, persona):
    with pytest.raises(PermissionDenied) as refused:
        sdv_mark(by=getattr(world, persona), entry=entry(patient, "consent"))
    with pytest.raises(PermissionDenied):
        sdv_mark_visit(by=getattr(world, persona), visit=patient.visits.get(code="SCR"))
    assert not SdvMark.objects.exists()
    if persona in ("alice", "bob"):
        assert str(refused.value) == (
            "Your role does not allow you to verify source data here (monitor, data manager only)."
        )


def test_a_monitor_of_another_site_cannot_verify(world):
    strasbourg = screening_forms(screened_at(world, world.str_, by=world.charlie), by=world.charlie)
    with pytest.raises(PermissionDenied):
        sdv_mark(by=world.monica, entry=entry(strasbourg, "consent"))


def test_the_transitions_table_is_the_one_that_decides():
    transition_check(ReviewState.ENTERED, ReviewState.VERIFIED)
    transition_check(ReviewState.VERIFIED, ReviewState.ENTERED)
    with pytest.raises(TransitionRefused):
        transition_check(ReviewState.ENTERED, "locked")


def test_a_lock_stops_verification_a_freeze_does_not(world, patient):
    """Freeze: data cannot change, review goes on; lock: nothing changes, review included."""
    from django.utils import translation

    from ecrf.review.locks import data_freeze, data_lock

    consent = entry(patient, "consent")
    data_freeze(by=world.diane, patient=patient, reason="Interim analysis cut-off")
    sdv_mark(by=world.monica, entry=consent, expected_version=1)
    assert fresh(consent).review_state == "verified"
    data_lock(by=world.diane, patient=patient, reason="Casebook complete and reviewed")
    with translation.override("en"), pytest.raises(ValidationError, match="is locked by"):
        sdv_mark_visit(by=world.monica, visit=consent.visit)
