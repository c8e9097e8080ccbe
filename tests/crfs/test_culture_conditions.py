"""Sclero-JAK cultures: each group its conditions (patients untreated and ruxolitinib,
healthy donors in an SSc participant's serum), serum from another SSc participant only,
results dated after the culture, and a LAB visit complete only with every condition."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from ecrf.crfs.models import BloodSample, MdmCytokines, MdmFlow
from ecrf.crfs.services import crf_save
from ecrf.patients.models import Patient
from tests.clock import TODAY
from tests.walks.helpers import (
    add,
    cohort_inclusion,
    cytokines,
    date_visit,
    enrol,
    flow,
    form_url,
    saved,
    visit_status,
    visit_url,
)

pytestmark = pytest.mark.django_db

V0 = TODAY - timedelta(days=40)
LAB = V0 + timedelta(days=12)
HD_CONDITIONS = (
    "Culture condition: for the group “Healthy donors (EFS blood bank)”, choose "
    "“Healthy donor MDM + SSc serum, untreated”, “Healthy donor MDM + SSc serum, ruxolitinib”."
)
SSC_CONDITIONS = (
    "Culture condition: for the group “Systemic sclerosis patients (ACR/EULAR 2013)”, "
    "choose “Untreated”, “Ruxolitinib”."
)
SERUM_DONOR = (
    "Serum donor: choose another participant of this study, "
    "from the group “Systemic sclerosis patients (ACR/EULAR 2013)”."
)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def client(client, world):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.force_login(world.rene)
    return client


def enrolled(client, world, group: str, lab=LAB) -> Patient:
    patient = cohort_inclusion(client, world.cohort, group, V0)
    saved(enrol(client, patient, V0))
    if lab is not None:
        saved(date_visit(client, patient, "LAB", lab))
    return patient


@pytest.fixture
def cohort(client, world):
    """Enrolled and LAB dated: two SSc patients, an SLE patient and two healthy donors."""
    return {
        name: enrolled(client, world, group)
        for name, group in (
            ("ssc", "SSC"),
            ("ssc2", "SSC"),
            ("sle", "SLE"),
            ("hd", "HD"),
            ("hd2", "HD"),
        )
    }


def choices(client, patient, form_code: str, field: str) -> list[str]:
    form = client.get(form_url(patient, "LAB", form_code)).context["form"]
    return [str(value) for value, _label in form.fields[field].choices if str(value)]


# -- the choices offered --------------------------------------------------------------------


def test_a_patient_is_offered_untreated_and_ruxolitinib_and_no_serum_donor(client, cohort):
    for name in ("ssc", "sle"):
        for form_code in ("mdm_cytokines", "mdm_flow"):
            assert choices(client, cohort[name], form_code, "condition") == [
                "untreated",
                "ruxolitinib",
            ]
            form = client.get(form_url(cohort[name], "LAB", form_code)).context["form"]
            assert "serum_donor" not in form.fields


def test_a_healthy_donor_is_offered_the_serum_conditions_and_ssc_donors_only(client, cohort):
    donor = cohort["hd"]
    for form_code in ("mdm_cytokines", "mdm_flow"):
        assert choices(client, donor, form_code, "condition") == [
            "hd_serum_untreated",
            "hd_serum_ruxolitinib",
        ]
        # Neither the SLE patient, nor the other donor, nor the donor themself.
        ssc = Patient.objects.filter(study=donor.study, group="SSC").order_by("subject_code")
        assert choices(client, donor, form_code, "serum_donor") == [str(p.pk) for p in ssc]
        assert {str(cohort["ssc"].pk), str(cohort["ssc2"].pk)} <= set(
            choices(client, donor, form_code, "serum_donor")
        )


# -- refusals, on the screen and in the service ----------------------------------------------


def test_a_condition_of_another_group_is_refused_naming_the_right_ones(client, cohort):
    response = add(client, cohort["hd"], "LAB", "mdm_cytokines", cytokines("untreated"))
    assert response.context["form"].errors["condition"] == [HD_CONDITIONS]
    response = add(client, cohort["ssc"], "LAB", "mdm_flow", flow("hd_serum_untreated"))
    assert response.context["form"].errors["condition"] == [SSC_CONDITIONS]
    assert not MdmCytokines.objects.filter(patient=cohort["hd"]).exists()
    assert not MdmFlow.objects.filter(patient=cohort["ssc"]).exists()


def test_a_serum_donor_who_is_not_another_ssc_participant_is_refused(client, cohort):
    donor = cohort["hd"]
    for wrong in (cohort["sle"], cohort["hd2"], donor):
        data = cytokines("hd_serum_untreated", serum_donor=str(wrong.pk))
        response = add(client, donor, "LAB", "mdm_cytokines", data)
        assert response.context["form"].errors["serum_donor"] == [SERUM_DONOR]
    assert not MdmCytokines.objects.filter(patient=donor).exists()


def test_the_service_refuses_what_the_form_does_not_offer(world, cohort):
    donor = cohort["hd"]
    lab = donor.visits.get(code="LAB")
    with pytest.raises(ValidationError) as excinfo:
        crf_save(
            visit=lab,
            form_code="mdm_flow",
            values={"condition": "hd_serum_untreated", "serum_donor": cohort["sle"]},
            by=world.rene,
            expected_version=0,
        )
    assert excinfo.value.message_dict == {"serum_donor": [SERUM_DONOR]}
    with pytest.raises(ValidationError) as excinfo:
        crf_save(
            visit=cohort["ssc"].visits.get(code="LAB"),
            form_code="mdm_cytokines",
            values={"condition": "hd_serum_ruxolitinib"},
            by=world.rene,
            expected_version=0,
        )
    assert excinfo.value.message_dict == {"condition": [SSC_CONDITIONS]}
    assert not MdmFlow.objects.filter(patient=donor).exists()


def test_a_second_result_for_a_condition_is_a_sentence_a_biologist_understands(client, cohort):
    patient = cohort["ssc"]
    saved(add(client, patient, "LAB", "mdm_cytokines", cytokines("ruxolitinib")))
    response = add(client, patient, "LAB", "mdm_cytokines", cytokines("ruxolitinib"))
    assert response.context["form"].errors["condition"] == [
        "This visit already has cytokine results for the Ruxolitinib condition: "
        "open that one to change it."
    ]
    saved(add(client, patient, "LAB", "mdm_flow", flow("untreated")))
    response = add(client, patient, "LAB", "mdm_flow", flow("untreated"))
    assert response.context["form"].errors["condition"] == [
        "This visit already has flow cytometry results for the Untreated condition: "
        "open that one to change it."
    ]
    assert MdmCytokines.objects.filter(patient=patient).count() == 1


def test_the_database_refusal_of_a_duplicate_reads_the_same(world, cohort):
    patient = cohort["ssc"]
    lab = patient.visits.get(code="LAB")
    first = crf_save(
        visit=lab,
        form_code="mdm_cytokines",
        values={"condition": "untreated"},
        by=world.rene,
        expected_version=0,
    )
    message = first.unique_error_message(MdmCytokines, ("visit", "condition"))
    assert message.messages == [
        "This visit already has cytokine results for the Untreated condition: "
        "open that one to change it."
    ]


# -- the dates of the results ---------------------------------------------------------------


def test_the_lab_visit_cannot_be_dated_on_the_day_of_the_sample(client, world):
    patient = enrolled(client, world, "SSC", lab=None)
    response = date_visit(client, patient, "LAB", V0)
    assert response.status_code == 200
    assert response.context["form"].errors["visit_date"] == [
        "Visit LAB holds the results of cultures that take at least 1 day after the blood "
        f"sample of visit V0 ({V0:%d %b %Y}): its earliest date is "
        f"{V0 + timedelta(days=1):%d %b %Y}."
    ]
    assert patient.visits.get(code="LAB").visit_date is None
    saved(date_visit(client, patient, "LAB", V0 + timedelta(days=1)))


def test_results_on_the_day_of_the_sample_are_refused_the_culture_takes_a_day(client, world):
    patient = enrolled(client, world, "SSC")
    # The sample was taken later than visit V0 itself (a correction): on the LAB day.
    BloodSample.objects.filter(visit__patient=patient).update(sample_date=LAB)
    response = add(client, patient, "LAB", "mdm_cytokines", cytokines("untreated"))
    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert len(errors) == 1
    assert "takes at least 1 day" in errors[0]
    assert "Correct the date of visit LAB" in errors[0]
    assert not MdmCytokines.objects.filter(patient=patient).exists()


def test_results_dated_before_the_blood_sample_are_refused(world, client):
    patient = enrolled(client, world, "SSC")
    # The blood sample was taken later than the visit V0 itself (a correction).
    sample = patient.visits.get(code="V0")
    BloodSample.objects.filter(visit=sample).update(sample_date=LAB + timedelta(days=1))
    with pytest.raises(ValidationError) as excinfo:
        crf_save(
            visit=patient.visits.get(code="LAB"),
            form_code="mdm_flow",
            values={"condition": "untreated"},
            by=world.rene,
            expected_version=0,
        )
    (message,) = excinfo.value.messages
    assert "before the blood sample" in message


# -- the LAB visit is complete with every condition -----------------------------------------


def test_lab_is_complete_only_with_every_condition_of_both_forms(client, cohort):
    patient = cohort["ssc"]
    saved(add(client, patient, "LAB", "mdm_cytokines", cytokines("untreated")))
    saved(add(client, patient, "LAB", "mdm_flow", flow("untreated")))
    # One complete instance of each form used to be enough.
    assert visit_status(patient, "LAB") == "in_progress"
    page = client.get(visit_url(patient, "LAB"))
    lacks = {row[0]: row[5] for row in page.context["rows"]}
    assert lacks == {"mdm_cytokines": ["Ruxolitinib"], "mdm_flow": ["Ruxolitinib"]}
    assert "Still needed: Ruxolitinib" in page.content.decode()

    saved(add(client, patient, "LAB", "mdm_cytokines", cytokines("ruxolitinib")))
    assert visit_status(patient, "LAB") == "in_progress"
    # An in-progress result does not count either.
    saved(add(client, patient, "LAB", "mdm_flow", {"condition": "ruxolitinib"}))
    assert visit_status(patient, "LAB") == "in_progress"
    assert client.get(visit_url(patient, "LAB")).context["rows"][1][5] == ["Ruxolitinib"]

    own = MdmFlow.objects.get(patient=patient, condition="ruxolitinib")
    url = form_url(patient, "LAB", "mdm_flow", instance=own)
    saved(client.post(url, {**flow("ruxolitinib"), "version": 1, "reason": "Plate read"}))
    assert visit_status(patient, "LAB") == "complete"


def test_a_healthy_donors_lab_needs_both_serum_conditions(client, cohort):
    donor, serum = cohort["hd"], str(cohort["ssc"].pk)
    for form_code, data in (("mdm_cytokines", cytokines), ("mdm_flow", flow)):
        saved(add(client, donor, "LAB", form_code, data("hd_serum_untreated", serum_donor=serum)))
    assert visit_status(donor, "LAB") == "in_progress"
    lacks = {row[0]: row[5] for row in client.get(visit_url(donor, "LAB")).context["rows"]}
    assert lacks == {
        "mdm_cytokines": ["Healthy donor MDM + SSc serum, ruxolitinib"],
        "mdm_flow": ["Healthy donor MDM + SSc serum, ruxolitinib"],
    }
    for form_code, data in (("mdm_cytokines", cytokines), ("mdm_flow", flow)):
        saved(add(client, donor, "LAB", form_code, data("hd_serum_ruxolitinib", serum_donor=serum)))
    assert visit_status(donor, "LAB") == "complete"
