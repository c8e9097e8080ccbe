"""A grade 5 event ends the patient's participation: status died, visits closed."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from ecrf.crfs.services import crf_save
from ecrf.patients.models import Patient, Visit
from ecrf.safety.services import ae_create
from tests.safety.conftest import ae_values, at, sae_values

pytestmark = pytest.mark.django_db

DEATH = date(2026, 10, 22)


def fatal(**overrides) -> dict:
    values = sae_values(
        term="Scleroderma renal crisis",
        ctcae_grade=5,
        sae_death=True,
        sae_hospitalisation=True,
        outcome="fatal",
        ongoing=False,
        end_date=DEATH,
        death_date=DEATH,
    )
    values.update(overrides)
    return values


def test_grade_5_event_records_the_death_and_closes_the_remaining_visits(world, enrolled):
    before = dict(enrolled.visits.values_list("code", "status"))
    assert before["M1"] == before["M12"] == Visit.Status.PLANNED

    event = ae_create(patient=enrolled, by=world.alice, values=fatal())

    patient = Patient.objects.get(pk=enrolled.pk)
    assert patient.status == Patient.Status.DIED
    assert patient.end_date == DEATH
    assert patient.end_reason == "death: AE-001 Scleroderma renal crisis"
    statuses = dict(patient.visits.values_list("code", "status"))
    assert set(statuses) == {"SCR", "M0", "M1", "M3", "M6", "M12"}
    assert set(statuses.values()) == {Visit.Status.CLOSED}
    # The death is a serious event: its initial report is pending.
    assert event.sae_reports.get().due_at == at(2026, 10, 22, 7, 30)


def test_no_form_is_entered_after_the_death(world, enrolled):
    ae_create(patient=enrolled, by=world.alice, values=fatal())
    scr = enrolled.visits.get(code="SCR")
    with pytest.raises(ValidationError, match="closed"):
        crf_save(
            visit=scr,
            form_code="medical_history",
            values={"ssc_type": "systemic"},
            by=world.alice,
            expected_version=0,
        )


def test_an_earlier_event_is_still_recorded_after_the_death(world, enrolled):
    ae_create(patient=enrolled, by=world.alice, values=fatal())
    second = ae_create(patient=enrolled, by=world.bob, values=ae_values())
    assert second.number == 2


def test_an_event_beginning_after_the_death_is_refused(world, enrolled):
    ae_create(patient=enrolled, by=world.alice, values=fatal())
    values = ae_values(
        onset_date="2026-10-23", end_date=date(2026, 10, 24), aware_at=at(2026, 10, 24, 9, 0)
    )
    with pytest.raises(ValidationError) as excinfo:
        ae_create(patient=enrolled, by=world.alice, values=values)
    assert set(excinfo.value.message_dict) == {"onset_date"}
    assert "2026-10-22" in excinfo.value.message_dict["onset_date"][0]


def test_upgrading_an_event_to_grade_5_records_the_death(world, enrolled):
    from ecrf.safety.services import ae_update

    event = ae_create(patient=enrolled, by=world.alice, values=sae_values())
    ae_update(
        event=event,
        by=world.alice,
        values=fatal(term="Pneumonia"),
        expected_version=1,
        reason="the patient died on 22 October",
    )
    patient = Patient.objects.get(pk=enrolled.pk)
    assert (patient.status, patient.end_date) == (Patient.Status.DIED, DEATH)
    assert not patient.visits.exclude(status=Visit.Status.CLOSED).exists()


def test_grade_4_event_leaves_the_patient_enrolled(world, enrolled):
    ae_create(patient=enrolled, by=world.alice, values=sae_values(ctcae_grade=4))
    patient = Patient.objects.get(pk=enrolled.pk)
    assert (patient.status, patient.end_date) == (Patient.Status.ENROLLED, None)
    assert patient.visits.filter(status=Visit.Status.PLANNED).count() == 5


def test_correcting_the_date_of_death_moves_the_patients_end_date(world, enrolled):
    from ecrf.safety.services import ae_update

    event = ae_create(patient=enrolled, by=world.alice, values=fatal())
    ae_update(
        event=event,
        by=world.alice,
        values=fatal(death_date=date(2026, 10, 21), end_date=date(2026, 10, 21)),
        expected_version=1,
        reason="death certificate: 21 October",
    )
    patient = Patient.objects.get(pk=enrolled.pk)
    assert (patient.status, patient.end_date) == (Patient.Status.DIED, date(2026, 10, 21))


def test_a_second_fatal_event_gives_the_same_date_of_death(world, enrolled):
    ae_create(patient=enrolled, by=world.alice, values=fatal())
    other = fatal(term="Pulmonary embolism", death_date=date(2026, 10, 21))
    with pytest.raises(ValidationError) as excinfo:
        ae_create(patient=enrolled, by=world.alice, values=other)
    assert excinfo.value.message_dict == {
        "death_date": ["The patient's death is recorded on 2026-10-22: give that date."]
    }
    second = ae_create(patient=enrolled, by=world.alice, values={**other, "death_date": DEATH})
    assert second.number == 2
    assert Patient.objects.get(pk=enrolled.pk).end_date == DEATH


def test_the_death_is_recorded_on_the_patient_with_its_reason_in_the_audit_trail(world, enrolled):
    import pghistory.models

    ae_create(patient=enrolled, by=world.alice, values=fatal())
    event = pghistory.models.Events.objects.get(
        pgh_obj_model="patients.Patient",
        pgh_obj_id=str(enrolled.pk),
        pgh_data__status=Patient.Status.DIED,
    )
    assert event.pgh_context["reason"] == "death: AE-001 Scleroderma renal crisis"
    assert event.pgh_context["user"] == world.alice.pk
