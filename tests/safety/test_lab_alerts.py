"""Safety-lab prompts: a value beyond the protocol's alert asks the investigator for an AE."""

from __future__ import annotations

from decimal import Decimal

import pghistory.models
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from ecrf.crfs.models import SafetyLabs
from ecrf.crfs.services import crf_save
from ecrf.patients.services import patient_create
from ecrf.review.audit_trail import patient_audit_trail
from ecrf.safety.models import AdverseEvent, LabAlert
from ecrf.safety.services import ae_create, lab_alert_dismiss
from tests.safety.conftest import CONSENT_DAY, ae_values, at, consent

pytestmark = pytest.mark.django_db

NORMAL = {
    "sample_date": CONSENT_DAY,
    "hemoglobin_g_dl": Decimal("13.1"),
    "neutrophils_x10e9_l": Decimal("4.2"),
    "platelets_x10e9_l": Decimal("250"),
    "bilirubin_umol_l": Decimal("10"),
    "bilirubin_umol_l_uln": Decimal("17"),
    "ast_u_l": Decimal("25"),
    "ast_u_l_uln": Decimal("40"),
    "alt_u_l": Decimal("30"),
    "alt_u_l_uln": Decimal("45"),
    "creatinine_umol_l": Decimal("70"),
    "creatinine_umol_l_uln": Decimal("100"),
}
# Neutropenia, thrombocytopenia and ALT at twice its upper normal limit.
ABNORMAL = {
    **NORMAL,
    "neutrophils_x10e9_l": Decimal("0.8"),
    "platelets_x10e9_l": Decimal("40"),
    "alt_u_l": Decimal("90"),
}


def save_labs(world, patient, values, *, reason=""):
    visit = patient.visits.get(code="SCR")
    labs = SafetyLabs.objects.filter(visit=visit).first()
    return crf_save(
        visit=visit,
        form_code="safety_labs",
        values=values,
        by=world.alice,
        expected_version=labs.version if labs else 0,
        reason=reason,
    )


def alerts(patient) -> dict[str, tuple]:
    return {
        a.analyte: (a.value, a.limit, a.status)
        for a in LabAlert.objects.filter(patient=patient).order_by("analyte")
    }


@pytest.fixture
def prompted(world, patient):
    """Screening labs with three values beyond the alert limits."""
    labs = save_labs(world, patient, ABNORMAL)
    return labs, {a.analyte: a for a in LabAlert.objects.filter(labs=labs)}


def test_values_beyond_the_alert_limits_open_prompts_with_the_limit(world, prompted):
    labs, _ = prompted
    assert alerts(labs.patient) == {
        "alt_u_l": (Decimal("90.000"), "> 1.5 × ULN (45)", "open"),
        "neutrophils_x10e9_l": (Decimal("0.800"), "< 1", "open"),
        "platelets_x10e9_l": (Decimal("40.000"), "< 50", "open"),
    }
    assert set(LabAlert.objects.open().values_list("visit__code", flat=True)) == {"SCR"}


def test_values_on_the_limits_open_no_prompt(world, patient):
    at_limits = {
        **NORMAL,
        "neutrophils_x10e9_l": Decimal("1.0"),
        "platelets_x10e9_l": Decimal("50"),
        "alt_u_l": Decimal("67.5"),  # exactly 1.5 × 45
    }
    save_labs(world, patient, at_limits)
    assert not LabAlert.objects.exists()


def test_correcting_a_value_withdraws_its_open_prompt(world, prompted):
    labs, _ = prompted
    save_labs(
        world,
        labs.patient,
        {**ABNORMAL, "neutrophils_x10e9_l": Decimal("1.8")},
        reason="transcription error: 1.8, not 0.8",
    )
    assert alerts(labs.patient) == {
        "alt_u_l": (Decimal("90.000"), "> 1.5 × ULN (45)", "open"),
        "neutrophils_x10e9_l": (Decimal("0.800"), "< 1", "withdrawn"),
        "platelets_x10e9_l": (Decimal("40.000"), "< 50", "open"),
    }


def test_a_value_wrong_again_reopens_the_prompt_with_the_new_value(world, prompted):
    labs, _ = prompted
    save_labs(world, labs.patient, NORMAL, reason="Corrected on the report")
    assert not LabAlert.objects.open().exists()
    save_labs(
        world,
        labs.patient,
        {**NORMAL, "neutrophils_x10e9_l": Decimal("0.5")},
        reason="Recount on the analyser",
    )
    assert alerts(labs.patient)["neutrophils_x10e9_l"] == (Decimal("0.500"), "< 1", "open")
    assert LabAlert.objects.count() == 3


def test_a_dismissed_prompt_stays_dismissed_when_the_form_is_saved_again(world, prompted):
    labs, by_analyte = prompted
    lab_alert_dismiss(alert=by_analyte["platelets_x10e9_l"], by=world.alice, reason="clumped")
    save_labs(world, labs.patient, ABNORMAL, reason="hemoglobin re-read")
    assert alerts(labs.patient)["platelets_x10e9_l"][2] == "dismissed"


def test_a_dismissed_prompt_reopens_when_another_abnormal_value_is_entered(world, prompted):
    labs, by_analyte = prompted
    alert = by_analyte["neutrophils_x10e9_l"]
    lab_alert_dismiss(alert=alert, by=world.alice, reason="EDTA tube clotted, recount asked")
    save_labs(
        world,
        labs.patient,
        {**ABNORMAL, "neutrophils_x10e9_l": Decimal("0.4")},
        reason="recount on a new sample",
    )
    alert.refresh_from_db()
    assert (alert.value, alert.status, alert.dismiss_reason, alert.resolved_by) == (
        Decimal("0.400"),
        "open",
        "",
        None,
    )
    reopened = pghistory.models.Events.objects.tracks(alert).order_by("pgh_id").last()
    assert reopened.pgh_context["reason"] == "recount on a new sample"
    assert reopened.pgh_diff["dismiss_reason"] == ["EDTA tube clotted, recount asked", ""]


def test_an_open_prompt_follows_a_changed_abnormal_value(world, prompted):
    labs, by_analyte = prompted
    save_labs(
        world,
        labs.patient,
        {**ABNORMAL, "platelets_x10e9_l": Decimal("30")},
        reason="Typo in the platelet count",
    )
    assert alerts(labs.patient)["platelets_x10e9_l"] == (Decimal("30.000"), "< 50", "open")


def test_saving_the_same_values_again_leaves_the_prompts_untouched(world, prompted):
    labs, by_analyte = prompted
    events = pghistory.models.Events.objects.filter(pgh_obj_model="safety.LabAlert")
    before = events.count()
    save_labs(world, labs.patient, ABNORMAL, reason="sample date confirmed")
    assert events.count() == before
    assert {a[2] for a in alerts(labs.patient).values()} == {"open"}


def test_dismissing_needs_a_reason(world, prompted):
    _, by_analyte = prompted
    alert = by_analyte["platelets_x10e9_l"]
    with pytest.raises(ValidationError) as excinfo:
        lab_alert_dismiss(alert=alert, by=world.alice, reason="  ")
    assert set(excinfo.value.message_dict) == {"reason"}
    alert.refresh_from_db()
    assert (alert.status, alert.dismiss_reason) == ("open", "")


def test_dismissal_is_recorded_and_audited_with_its_reason(world, prompted):
    _, by_analyte = prompted
    reason = "Clumped sample: 180 on the citrate tube"
    alert = lab_alert_dismiss(alert=by_analyte["platelets_x10e9_l"], by=world.bob, reason=reason)
    alert.refresh_from_db()
    assert (alert.status, alert.dismiss_reason, alert.resolved_by) == (
        "dismissed",
        reason,
        world.bob,
    )
    assert alert.resolved_at is not None
    event = pghistory.models.Events.objects.tracks(alert).order_by("pgh_id").last()
    assert event.pgh_label == "update"
    assert event.pgh_context["reason"] == f"lab prompt dismissed: {reason}"
    assert event.pgh_context["user"] == world.bob.pk
    assert event.pgh_data["status"] == "dismissed"
    # And it is in the patient's audit trail as monitors read it.
    (entry,) = [
        e
        for e in patient_audit_trail(patient=alert.patient, unblinded=False)
        if e.reason.startswith("lab prompt dismissed")
    ]
    assert entry.reason == f"lab prompt dismissed: {reason}"
    assert ("status", "Open", "Dismissed") in [(c.field, c.old, c.new) for c in entry.changes]


def test_a_prompt_is_dismissed_once(world, prompted):
    _, by_analyte = prompted
    alert = by_analyte["platelets_x10e9_l"]
    lab_alert_dismiss(alert=alert, by=world.alice, reason="clumped")
    with pytest.raises(ValidationError, match="not open any more"):
        lab_alert_dismiss(alert=alert, by=world.alice, reason="again")
    alert.refresh_from_db()
    assert alert.dismiss_reason == "clumped"


@pytest.mark.parametrize("persona", ["monica", "charlie", "diane"])
def test_only_site_staff_dismiss(world, prompted, persona):
    _, by_analyte = prompted
    alert = by_analyte["platelets_x10e9_l"]
    with pytest.raises(PermissionDenied):
        lab_alert_dismiss(alert=alert, by=getattr(world, persona), reason="not relevant")
    alert.refresh_from_db()
    assert alert.status == "open"


def neutropenia(**overrides) -> dict:
    values = ae_values(
        term="Neutropenia",
        onset_date=CONSENT_DAY.isoformat(),
        end_date=None,
        ongoing=True,
        ctcae_grade=3,
        aware_at=at(2026, 9, 16, 8, 0),
    )
    values.update(overrides)
    return values


def test_recording_an_ae_answers_the_prompt_and_is_audited(world, prompted):
    labs, by_analyte = prompted
    alert = by_analyte["neutrophils_x10e9_l"]
    event = ae_create(patient=labs.patient, by=world.alice, values=neutropenia(), lab_alert=alert)
    alert.refresh_from_db()
    assert (alert.status, alert.adverse_event, alert.resolved_by) == (
        "ae_recorded",
        event,
        world.alice,
    )
    assert list(event.lab_alerts.all()) == [alert]
    last = pghistory.models.Events.objects.tracks(alert).order_by("pgh_id").last()
    assert last.pgh_context["reason"] == "adverse event recorded"
    assert last.pgh_context["user"] == world.alice.pk
    assert last.pgh_data["adverse_event_id"] == event.pk
    (created,) = pghistory.models.Events.objects.tracks(event)
    assert created.pgh_context["reason"] == "adverse event recorded"


def test_prompts_are_audited_with_the_forms_reason(world, prompted):
    labs, by_analyte = prompted
    (opened,) = pghistory.models.Events.objects.tracks(by_analyte["alt_u_l"])
    assert (opened.pgh_label, opened.pgh_context["reason"]) == ("insert", "first entry")
    save_labs(
        world,
        labs.patient,
        {**ABNORMAL, "alt_u_l": Decimal("40")},
        reason="Wrong row of the report",
    )
    withdrawn = (
        pghistory.models.Events.objects.tracks(by_analyte["alt_u_l"]).order_by("pgh_id").last()
    )
    assert withdrawn.pgh_data["status"] == "withdrawn"
    assert withdrawn.pgh_context["reason"] == "Wrong row of the report"


def test_an_answered_prompt_cannot_take_a_second_event(world, prompted):
    labs, by_analyte = prompted
    alert = by_analyte["neutrophils_x10e9_l"]
    ae_create(patient=labs.patient, by=world.alice, values=neutropenia(), lab_alert=alert)
    with pytest.raises(ValidationError, match="not open any more"):
        ae_create(patient=labs.patient, by=world.alice, values=neutropenia(), lab_alert=alert)
    assert AdverseEvent.objects.count() == 1


def test_a_dismissed_prompt_cannot_take_an_event(world, prompted):
    labs, by_analyte = prompted
    alert = lab_alert_dismiss(alert=by_analyte["alt_u_l"], by=world.alice, reason="haemolysed")
    with pytest.raises(ValidationError, match="not open any more"):
        ae_create(
            patient=labs.patient,
            by=world.alice,
            values=neutropenia(term="ALT increased"),
            lab_alert=alert,
        )
    assert not AdverseEvent.objects.exists()


def test_another_patients_prompt_cannot_be_answered(world, prompted):
    _, by_analyte = prompted
    other = consent(
        patient_create(study=world.rct, site=world.bxp, by=world.alice, screening_date=CONSENT_DAY),
        by=world.alice,
    )
    with pytest.raises(ValidationError, match="not open any more"):
        ae_create(
            patient=other,
            by=world.alice,
            values=neutropenia(),
            lab_alert=by_analyte["neutrophils_x10e9_l"],
        )
    assert not AdverseEvent.objects.exists()
    assert by_analyte["neutrophils_x10e9_l"].status == "open"


def test_an_invalid_event_leaves_the_prompt_open(world, prompted):
    labs, by_analyte = prompted
    alert = by_analyte["neutrophils_x10e9_l"]
    with pytest.raises(ValidationError):
        ae_create(
            patient=labs.patient,
            by=world.alice,
            values=neutropenia(onset_date="2026-09-14"),
            lab_alert=alert,
        )
    alert.refresh_from_db()
    assert (alert.status, alert.adverse_event) == ("open", None)


@pytest.mark.parametrize("uln", ["100", "100.0", "1E+2"])
def test_uln_limit_text_is_a_plain_number_however_the_uln_was_written(world, patient, uln):
    # The edit form shows the stored 100.0 and sends it back: the text must not change.
    values = {
        **NORMAL,
        "creatinine_umol_l": Decimal("180.5"),
        "creatinine_umol_l_uln": Decimal(uln),
    }
    save_labs(world, patient, values)
    (alert,) = LabAlert.objects.all()
    assert (alert.analyte, alert.limit) == ("creatinine_umol_l", "> 1.5 × ULN (100)")


def test_database_refuses_an_unknown_prompt_status(world, prompted):
    _, by_analyte = prompted
    with pytest.raises(IntegrityError, match="lab_alert_status_choice"), transaction.atomic():
        LabAlert.objects.filter(pk=by_analyte["alt_u_l"].pk).update(status="closed")


def test_database_refuses_a_dismissal_without_reason(world, prompted):
    _, by_analyte = prompted
    with (
        pytest.raises(IntegrityError, match="lab_alert_dismissal_has_reason"),
        transaction.atomic(),
    ):
        LabAlert.objects.filter(pk=by_analyte["alt_u_l"].pk).update(status="dismissed")
