"""Taking a slot at enrolment: once per patient, next free slot of the patient's site."""

from __future__ import annotations

import threading

import pghistory
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import translation

from ecrf.accounts.access import Role
from ecrf.patients.models import Allocation, Patient
from ecrf.patients.randomisation import (
    allocation_list_generate,
    allocation_list_import,
    allocation_take,
)
from ecrf.studies.models import Site
from tests.factories import MembershipFactory, PatientFactory, UserFactory

TWO_SLOTS = [
    {"sequence": "1", "block_number": "1", "block_size": "2", "arm": "IMA", "kit_number": "K-1"},
    {"sequence": "2", "block_number": "1", "block_size": "2", "arm": "PBO", "kit_number": "K-2"},
]


@pytest.mark.django_db
class TestTake:
    def test_patients_take_the_site_slots_in_sequence_order(self, world, lists):
        first = allocation_take(patient=world.bxp_patients[0], by=world.alice)
        second = allocation_take(patient=world.bxp_patients[1], by=world.bob)
        assert (first.sequence, second.sequence) == (1, 2)
        assert first.allocation_list == lists["BXP"]
        assert first.allocated_by == world.alice and first.allocated_at is not None
        assert world.bxp_patients[0].allocation == first

    def test_taking_is_audited_as_randomisation(self, world, lists):
        slot = allocation_take(patient=world.bxp_patients[0], by=world.alice)
        event = pghistory.models.Events.objects.tracks(slot).order_by("pgh_id").last()
        assert event.pgh_label == "update"
        assert event.pgh_context["reason"] == "randomisation"
        assert event.pgh_context["user"] == world.alice.pk
        assert set(event.pgh_diff) == {"patient_id", "allocated_at", "allocated_by_id"}

    def test_a_second_take_for_the_same_patient_is_refused(self, world, lists):
        slot = allocation_take(patient=world.bxp_patients[0], by=world.alice)
        with pytest.raises(ValidationError) as excinfo:
            allocation_take(patient=world.bxp_patients[0], by=world.alice)
        message = excinfo.value.messages[0]
        assert "already randomised" in message and slot.kit_number in message
        assert "IMA" not in message and "PBO" not in message
        assert Allocation.objects.filter(patient__isnull=False).count() == 1

    def test_exhausted_list_gives_a_clear_error(self, world, ursula):
        allocation_list_import(study=world.rct, site=world.bxp, rows=TWO_SLOTS, by=ursula)
        allocation_take(patient=world.bxp_patients[0], by=world.alice)
        allocation_take(patient=world.bxp_patients[1], by=world.alice)
        with pytest.raises(ValidationError, match="allocation list of site BXP is used up"):
            allocation_take(patient=world.bxp_patients[2], by=world.alice)
        assert not hasattr(Patient.objects.get(pk=world.bxp_patients[2].pk), "allocation")

    def test_site_without_a_list_gives_a_clear_error(self, world, ursula):
        allocation_list_generate(study=world.rct, site=world.bxp, size=10, by=ursula)
        with pytest.raises(ValidationError, match="Site STR has no allocation list"):
            allocation_take(patient=world.str_patients[0], by=world.charlie)

    def test_strasbourg_patient_never_takes_a_bordeaux_slot(self, world, lists):
        bxp = allocation_take(patient=world.bxp_patients[0], by=world.alice)
        str_ = allocation_take(patient=world.str_patients[0], by=world.charlie)
        assert (bxp.site, bxp.sequence) == (world.bxp, 1)
        assert (str_.site, str_.sequence, str_.allocation_list) == (world.str_, 1, lists["STR"])
        assert Allocation.objects.filter(site=world.bxp, patient__isnull=False).count() == 1

    @pytest.mark.parametrize("persona", ["monica", "diane", "charlie"])
    def test_only_site_staff_randomise(self, world, lists, persona):
        with (
            translation.override("en"),
            pytest.raises(PermissionDenied, match="investigator, coordinator only"),
        ):
            allocation_take(patient=world.bxp_patients[0], by=getattr(world, persona))
        assert not Allocation.objects.filter(patient__isnull=False).exists()

    def test_screen_failed_patient_is_not_randomised(self, world, lists):
        patient = world.bxp_patients[0]
        patient.status = Patient.Status.SCREEN_FAILED
        with pytest.raises(ValidationError, match="cannot be randomised"):
            allocation_take(patient=patient, by=world.alice)

    def test_database_refuses_a_half_taken_slot(self, world, lists):
        from django.db import IntegrityError, transaction

        slot = lists["BXP"].slots.first()
        with pytest.raises(IntegrityError), transaction.atomic():
            Allocation.objects.filter(pk=slot.pk).update(patient=world.bxp_patients[0])


@pytest.mark.django_db(transaction=True)
def test_50_concurrent_enrolments_at_one_site_take_50_distinct_slots_in_order(studies):
    rct = studies["rct"]
    bxp = Site.objects.get(code="BXP")
    investigator = UserFactory(username="busy-investigator")
    MembershipFactory(user=investigator, study=rct, site=bxp, role=Role.INVESTIGATOR)
    manager = UserFactory(username="unblinded-dm")
    MembershipFactory(user=manager, study=rct, site=None, role=Role.DATA_MANAGER, unblinded=True)
    allocation_list_generate(study=rct, site=bxp, size=50, seed=50, by=manager)
    patients = [PatientFactory(study=rct, site=bxp, created_by=investigator) for _ in range(50)]
    barrier = threading.Barrier(len(patients))
    taken, errors = [], []

    def enrol(patient):
        try:
            barrier.wait()
            taken.append(allocation_take(patient=patient, by=investigator))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=enrol, args=(p,)) for p in patients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(slot.sequence for slot in taken) == list(range(1, 51))
    assert len({slot.kit_number for slot in taken}) == 50
    rows = list(
        Allocation.objects.filter(site=bxp, patient__isnull=False).order_by("allocated_at", "pk")
    )
    assert len({row.patient_id for row in rows}) == 50
    assert [row.sequence for row in rows] == list(range(1, 51))  # first come, first served
