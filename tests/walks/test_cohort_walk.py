"""NCT04206644 (Sclero-JAK) end to end through the web layer: an SSc patient, an SLE
patient and a healthy donor through V0 (inclusion) and LAB (macrophage cultures), and the
enrolments the data refuse (classification not met, hemoglobin under 7 g/dL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecrf.crfs.models import (
    ClinicalCharacteristics,
    MdmCytokines,
    MdmFlow,
    SleClassification,
    SscClassification,
)
from ecrf.patients.models import Patient
from tests.clock import TODAY
from tests.walks.helpers import (
    add,
    clinical,
    cohort_inclusion,
    cytokines,
    date_visit,
    enrol,
    flashed,
    flow,
    form_url,
    saved,
    sle_findings,
    ssc_findings,
    visit_status,
    visit_url,
)

pytestmark = pytest.mark.django_db

V0 = TODAY - timedelta(days=40)
LAB = V0 + timedelta(days=12)
GROUP_FORMS = {"clinical_characteristics", "ssc_classification", "sle_classification"}


@pytest.fixture
def client(client, world):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.force_login(world.rene)
    return client


def inclusion(client, world, group: str, **kwargs) -> Patient:
    return cohort_inclusion(client, world.cohort, group, V0, **kwargs)


def laboratory(client, patient: Patient, conditions: tuple[str, str], **extra) -> None:
    saved(date_visit(client, patient, "LAB", LAB))
    assert visit_status(patient, "LAB") == "in_progress"
    for condition in conditions:
        saved(add(client, patient, "LAB", "mdm_cytokines", cytokines(condition, **extra)))
        saved(add(client, patient, "LAB", "mdm_flow", flow(condition, **extra)))
    assert visit_status(patient, "LAB") == "complete"


def offered(client, patient: Patient, code: str) -> set[str]:
    response = client.get(visit_url(patient, code))
    assert response.status_code == 200
    return {row[0] for row in response.context["rows"]}


def test_sclerojak_ssc_sle_and_healthy_donor_through_v0_and_lab(client, world):
    # SSc patient: ACR/EULAR 2013 classified by item 1, hemoglobin 12.4 g/dL.
    ssc = inclusion(client, world, "SSC")
    assert offered(client, ssc, "V0") == {
        "demographics", "consent", "eligibility", "clinical_characteristics",
        "ssc_classification", "safety_labs", "blood_sample",
    }  # fmt: skip
    classification = SscClassification.objects.get(patient=ssc)
    assert (classification.classification, classification.sufficient) == ("classified", True)
    response = enrol(client, ssc, V0)
    ssc.refresh_from_db()
    assert ssc.status == Patient.Status.ENROLLED, flashed(response)
    assert ssc.day0_date == V0
    assert [v.code for v in ssc.visits.order_by("sequence")] == ["V0", "LAB"]
    lab = ssc.visits.get(code="LAB")
    assert (lab.target_date, lab.earliest_date, lab.latest_date) == (None, None, None)

    # LAB cannot be dated before V0 (it follows it).
    response = date_visit(client, ssc, "LAB", V0 - timedelta(days=1))
    assert response.status_code == 200
    assert "before" in str(response.context["date_form"].errors["visit_date"])
    assert ssc.visits.get(code="LAB").visit_date is None

    laboratory(client, ssc, ("untreated", "ruxolitinib"))
    untreated = MdmCytokines.objects.get(patient=ssc, condition="untreated")
    assert (untreated.il6_pg_ml, untreated.il6_below_lod, str(untreated.il6_lod_pg_ml)) == (
        None,
        True,
        "3.10",
    )
    assert str(untreated.ccl18_pg_ml) == "1830.50"
    assert untreated.status == "complete"
    treated = MdmCytokines.objects.get(patient=ssc, condition="ruxolitinib")
    assert str(treated.ruxolitinib_nm) == "1000.0"
    assert MdmFlow.objects.filter(patient=ssc).count() == 2
    assert str(MdmFlow.objects.get(patient=ssc, condition="untreated").hla_dr_pos_pct) == "44.00"

    # A second "untreated" culture at the same visit is refused with a message, not a 500.
    response = add(client, ssc, "LAB", "mdm_cytokines", cytokines("untreated"))
    assert response.status_code == 200
    assert "condition" in response.context["form"].errors
    assert MdmCytokines.objects.filter(patient=ssc).count() == 2

    # SLE patient: EULAR/ACR 2019 classified (12 points with a clinical criterion).
    sle = inclusion(client, world, "SLE")
    assert offered(client, sle, "V0") == {
        "demographics", "consent", "eligibility", "clinical_characteristics",
        "sle_classification", "safety_labs", "blood_sample",
    }  # fmt: skip
    assert SleClassification.objects.get(patient=sle).classification == "classified"
    assert SleClassification.objects.get(patient=sle).points == 12
    response = enrol(client, sle, V0)
    sle.refresh_from_db()
    assert sle.status == Patient.Status.ENROLLED, flashed(response)
    laboratory(client, sle, ("untreated", "ruxolitinib"))

    # Healthy donor: no classification and no clinical forms, and no criterion I1.
    donor = inclusion(client, world, "HD")
    assert offered(client, donor, "V0") & GROUP_FORMS == set()
    for form_code in sorted(GROUP_FORMS):
        assert client.get(form_url(donor, "V0", form_code)).status_code == 404
        response = client.post(
            form_url(donor, "V0", form_code),
            {"version": 0, **ssc_findings(), **sle_findings(), **clinical()},
        )
        assert response.status_code == 404, form_code
    assert not ClinicalCharacteristics.objects.filter(patient=donor).exists()
    assert not SscClassification.objects.filter(patient=donor).exists()
    assert not SleClassification.objects.filter(patient=donor).exists()
    eligibility = client.get(form_url(donor, "V0", "eligibility")).context["form"]
    assert [name for name in eligibility.fields if name.startswith("criterion_")] == [
        "criterion_I2",
        "criterion_E1",
        "criterion_E2",
    ]
    response = enrol(client, donor, V0)
    donor.refresh_from_db()
    assert donor.status == Patient.Status.ENROLLED, flashed(response)

    # The donor's macrophages are cultured in the SSc participant's serum.
    form = client.get(form_url(donor, "LAB", "mdm_cytokines")).status_code
    laboratory(
        client, donor, ("hd_serum_untreated", "hd_serum_ruxolitinib"), serum_donor=str(ssc.pk)
    )
    assert form == 200
    assert set(
        MdmCytokines.objects.filter(patient=donor).values_list("condition", "serum_donor")
    ) == {("hd_serum_untreated", ssc.pk), ("hd_serum_ruxolitinib", ssc.pk)}
    assert set(MdmFlow.objects.filter(patient=donor).values_list("serum_donor", flat=True)) == {
        ssc.pk
    }

    # A culture of another participant is not reachable through the donor's visit.
    assert (
        client.get(form_url(donor, "LAB", "mdm_cytokines", instance=untreated)).status_code == 404
    )
    response = client.post(
        form_url(donor, "LAB", "mdm_cytokines", instance=untreated),
        {**cytokines("untreated"), "version": untreated.version, "reason": "x", "ccl18_pg_ml": "1"},
    )
    assert response.status_code == 404
    untreated.refresh_from_db()
    assert (str(untreated.ccl18_pg_ml), untreated.version) == ("1830.50", 1)

    # The donor's own culture is changed through its own address, with a reason.
    own = MdmCytokines.objects.get(patient=donor, condition="hd_serum_untreated")
    changed = {**cytokines("hd_serum_untreated", serum_donor=str(ssc.pk)), "ccl18_pg_ml": "1900"}
    url = form_url(donor, "LAB", "mdm_cytokines", instance=own)
    saved(client.post(url, {**changed, "version": 1, "reason": "Plate re-read"}))
    own.refresh_from_db()
    assert (str(own.ccl18_pg_ml), own.version, own.status) == ("1900.00", 2, "complete")

    # The casebook shows every participant's LAB complete.
    for patient in (ssc, sle, donor):
        assert visit_status(patient, "LAB") == "complete"
        assert visit_status(patient, "V0") == "complete"


def test_healthy_donor_serum_must_come_from_another_participant(client, world):
    ssc = inclusion(client, world, "SSC")
    saved(enrol(client, ssc, V0))
    donor = inclusion(client, world, "HD")
    saved(enrol(client, donor, V0))
    saved(date_visit(client, donor, "LAB", LAB))

    # Serum "from" the donor themself, and a serum donor on a condition without serum.
    for data in (
        cytokines("hd_serum_untreated", serum_donor=str(donor.pk)),
        cytokines("untreated", serum_donor=str(ssc.pk)),
    ):
        response = add(client, donor, "LAB", "mdm_cytokines", data)
        assert response.status_code == 200
        assert response.context["form"].errors
    # A participant of the other study is not offered at all.
    other = world.bxp_patients[0]
    response = add(
        client, donor, "LAB", "mdm_flow", flow("hd_serum_untreated", serum_donor=str(other.pk))
    )
    assert response.status_code == 200
    assert "serum_donor" in response.context["form"].errors
    assert not MdmCytokines.objects.filter(patient=donor).exists()
    assert not MdmFlow.objects.filter(patient=donor).exists()
    choices = [
        value
        for value, _label in client.get(form_url(donor, "LAB", "mdm_flow"))
        .context["form"]
        .fields["serum_donor"]
        .choices
    ]
    assert str(other.pk) not in {str(v) for v in choices}
    assert str(donor.pk) not in {str(v) for v in choices}


def test_ssc_patient_not_classified_cannot_be_enrolled(client, world):
    patient = inclusion(client, world, "SSC", classified=False)
    assert SscClassification.objects.get(patient=patient).classification == "not_classified"
    response = enrol(client, patient, V0)
    patient.refresh_from_db()
    assert patient.status == Patient.Status.SCREENING
    assert patient.day0_date is None
    problems = " ".join(flashed(response))
    assert "I1" in problems
    # The form's label and the conclusion as the form shows them, not codes.
    assert "ACR/EULAR 2013" in problems
    assert "not classified" in problems.lower()
    assert "not_classified" not in problems
    assert not patient.visits.filter(code="LAB").exists()


def test_hemoglobin_under_7_refuses_enrolment_naming_the_criterion(client, world):
    patient = inclusion(client, world, "SLE", hemoglobin="6.5")
    response = enrol(client, patient, V0)
    patient.refresh_from_db()
    assert patient.status == Patient.Status.SCREENING
    problems = " ".join(flashed(response))
    assert "E2" in problems
    assert "6.5 g/dL, needs ≥ 7" in problems
    assert "hemoglobin_g_dl" not in problems
    assert "I1" not in problems


def test_healthy_donor_with_hemoglobin_under_7_is_refused_too(client, world):
    donor = inclusion(client, world, "HD", hemoglobin="6.9")
    response = enrol(client, donor, V0)
    donor.refresh_from_db()
    assert donor.status == Patient.Status.SCREENING
    assert "6.9 g/dL, needs ≥ 7" in " ".join(flashed(response))


def test_cohort_visit_date_is_day_zero_or_enrolment_is_refused(client, world):
    patient = inclusion(client, world, "SSC")
    response = enrol(client, patient, V0 + timedelta(days=1))
    patient.refresh_from_db()
    assert patient.status == Patient.Status.SCREENING
    assert "V0" in " ".join(flashed(response))
