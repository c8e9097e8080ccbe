"""Kit numbers: a patient is dispensed the kit they were allocated, and a drug count names a
kit that was dispensed to them. The messages name the field and the kit, never the arm."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from ecrf.accounts.access import Role
from ecrf.crfs.models import DrugAccountability, DrugDispensing
from ecrf.crfs.services import crf_save
from ecrf.patients.models import Patient, Visit
from ecrf.patients.randomisation import allocation_list_generate, allocation_take
from ecrf.patients.services import patient_create
from ecrf.patients.visits import visit_record_date, visits_schedule_from_day0
from tests.clock import TODAY
from tests.factories import MembershipFactory, UserFactory
from tests.walks.helpers import form_url

pytestmark = pytest.mark.django_db

CONSENTED = TODAY - timedelta(days=60)
DAY0 = TODAY - timedelta(days=40)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _started(visit: Visit, day) -> Visit:
    # The schedule's order rules are tested with the visits; here only the form matters.
    Visit.objects.filter(pk=visit.pk).update(visit_date=day, status=Visit.Status.IN_PROGRESS)
    visit.refresh_from_db()
    return visit


def _randomised(world, site, by) -> Patient:
    patient = patient_create(study=world.rct, site=site, by=by, screening_date=CONSENTED)
    scr = visit_record_date(visit=patient.visits.get(code="SCR"), by=by, visit_date=CONSENTED)
    crf_save(
        visit=scr,
        form_code="consent",
        values={
            "consent_date": CONSENTED,
            "consent_version": "2.1",
            "signed_by_investigator": True,
        },
        by=by,
        expected_version=0,
    )
    allocation_take(patient=patient, by=by)
    Patient.objects.filter(pk=patient.pk).update(status=Patient.Status.ENROLLED, day0_date=DAY0)
    patient.refresh_from_db()
    visits_schedule_from_day0(patient=patient)
    return patient


@pytest.fixture
def patients(world):
    """Two Bordeaux patients randomised (kits of the site's generated list)."""
    ursula = UserFactory(username="ursula")
    MembershipFactory(
        user=ursula, study=world.rct, site=None, role=Role.DATA_MANAGER, unblinded=True
    )
    allocation_list_generate(study=world.rct, site=world.bxp, size=8, seed=1234, by=ursula)
    return [_randomised(world, world.bxp, world.alice) for _ in range(2)]


def kit(patient: Patient) -> str:
    return patient.allocation.kit_number


def dispense(world, patient: Patient, kit_number: str, **values):
    visit = _started(patient.visits.get(code="M0"), DAY0)
    return crf_save(
        visit=visit,
        form_code="drug_dispensing",
        values={
            "kit_number": kit_number,
            "dispensing_date": DAY0,
            "units_dispensed": 720,
            "expected_units_per_day": 4,
            **values,
        },
        by=world.alice,
        expected_version=0,
    )


def count(world, patient: Patient, kit_number: str):
    visit = _started(patient.visits.get(code="M1"), DAY0 + timedelta(days=30))
    return crf_save(
        visit=visit,
        form_code="drug_accountability",
        values={
            "kit_number": kit_number,
            "accountability_date": DAY0 + timedelta(days=30),
            "units_dispensed": 720,
            "units_returned": 600,
        },
        by=world.alice,
        expected_version=0,
    )


# -- the service ----------------------------------------------------------------------------


def test_the_allocated_kit_is_dispensed_and_complete(world, patients):
    patient = patients[0]
    saved = dispense(world, patient, kit(patient))
    assert (saved.kit_number, saved.status) == (kit(patient), "complete")


def test_a_kit_that_is_not_the_patients_is_refused_naming_the_expected_kit(world, patients):
    patient, other = patients
    for wrong in ("K-999999", kit(other)):
        with pytest.raises(ValidationError) as excinfo:
            dispense(world, patient, wrong)
        assert excinfo.value.message_dict == {
            "kit_number": [
                f"Kit number: {wrong} is not this patient's kit; "
                f"the kit allocated to them is {kit(patient)}."
            ]
        }
    assert not DrugDispensing.objects.filter(patient=patient).exists()


def test_the_refusal_never_shows_the_arm(world, patients):
    patient = patients[0]
    with pytest.raises(ValidationError) as excinfo:
        dispense(world, patient, "K-999999")
    text = " ".join(excinfo.value.messages)
    assert patient.allocation.arm not in text.split()
    assert "IMA" not in text and "PBO" not in text


def test_a_half_filled_dispensing_without_kit_is_kept_in_progress(world, patients):
    saved = dispense(world, patients[0], "")
    assert (saved.kit_number, saved.status) == ("", "in_progress")


def test_accountability_names_a_kit_dispensed_to_the_patient(world, patients):
    patient, other = patients
    dispense(world, patient, kit(patient))
    for wrong in ("K-999999", kit(other)):
        with pytest.raises(ValidationError) as excinfo:
            count(world, patient, wrong)
        assert excinfo.value.message_dict == {
            "kit_number": [
                f"Kit number: {wrong} was not dispensed to this patient; "
                f"kits dispensed to them: {kit(patient)}."
            ]
        }
    saved = count(world, patient, kit(patient))
    assert (saved.status, saved.compliance_pct) == ("complete", 100.0)


def test_accountability_before_any_dispensing_is_refused(world, patients):
    patient = patients[0]
    with pytest.raises(ValidationError) as excinfo:
        count(world, patient, kit(patient))
    assert excinfo.value.message_dict == {
        "kit_number": [
            "Kit number: no kit has been dispensed to this patient yet; "
            "record the drug dispensing first."
        ]
    }
    assert not DrugAccountability.objects.filter(patient=patient).exists()


# -- the screens ----------------------------------------------------------------------------


@pytest.fixture
def client(client, world):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.force_login(world.alice)
    return client


def test_the_dispensing_form_is_prefilled_with_the_allocated_kit(client, world, patients):
    patient = patients[0]
    _started(patient.visits.get(code="M0"), DAY0)
    response = client.get(form_url(patient, "M0", "drug_dispensing"))
    assert response.status_code == 200
    assert response.context["form"]["kit_number"].value() == kit(patient)
    assert f'value="{kit(patient)}"' in response.content.decode()


def test_the_dispensing_form_refuses_another_kit_with_the_expected_one(client, world, patients):
    patient = patients[0]
    _started(patient.visits.get(code="M0"), DAY0)
    response = client.post(
        form_url(patient, "M0", "drug_dispensing"),
        {
            "version": 0,
            "kit_number": "K-999999",
            "dispensing_date": DAY0.isoformat(),
            "units_dispensed": "720",
            "expected_units_per_day": "4",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["kit_number"] == [
        f"Kit number: K-999999 is not this patient's kit; "
        f"the kit allocated to them is {kit(patient)}."
    ]
    assert not DrugDispensing.objects.filter(patient=patient).exists()


def test_the_count_form_is_prefilled_with_the_one_kit_dispensed(client, world, patients):
    patient = patients[0]
    dispense(world, patient, kit(patient))
    _started(patient.visits.get(code="M1"), DAY0 + timedelta(days=30))
    response = client.get(form_url(patient, "M1", "drug_accountability"))
    assert response.context["form"]["kit_number"].value() == kit(patient)
    response = client.post(
        form_url(patient, "M1", "drug_accountability"),
        {
            "version": 0,
            "kit_number": "K-000001",
            "accountability_date": (DAY0 + timedelta(days=30)).isoformat(),
            "units_dispensed": "720",
            "units_returned": "600",
        },
    )
    assert response.context["form"].errors["kit_number"] == [
        f"Kit number: K-000001 was not dispensed to this patient; "
        f"kits dispensed to them: {kit(patient)}."
    ]
