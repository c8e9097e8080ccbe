"""Adverse events and SAE reports are in the form index, kept in step by the safety services."""

from __future__ import annotations

import pytest

from ecrf.patients.form_index import form_index_problems
from ecrf.patients.models import FormIndexEntry
from ecrf.safety.services import ae_create, ae_update, sae_follow_up, sae_submit_initial
from tests.safety.conftest import ae_values, at, sae_values

pytestmark = pytest.mark.django_db


def entries(patient) -> list[tuple]:
    return list(
        FormIndexEntry.objects.filter(patient=patient, visit__isnull=True)
        .order_by("form_code", "object_id")
        .values_list("form_code", "status", "version")
    )


def test_an_event_and_its_reports_are_indexed_as_they_are_recorded(world, patient, password):
    event = ae_create(patient=patient, by=world.alice, values=sae_values())
    assert entries(patient) == [("adverse_event", "complete", 1), ("sae_report", "in_progress", 1)]
    report = event.sae_reports.get()
    sae_submit_initial(report=report, by=world.alice, password=password, now=at(2026, 10, 21, 9))
    sae_follow_up(
        event=event,
        by=world.alice,
        password=password,
        narrative="Discharged home on oral antibiotics.",
        now=at(2026, 10, 24, 9),
    )
    assert entries(patient) == [
        ("adverse_event", "complete", 1),
        ("sae_report", "complete", 1),
        ("sae_report", "complete", 1),
    ]
    assert form_index_problems() == []


def test_a_change_is_a_new_version_in_the_index(world, patient):
    event = ae_create(patient=patient, by=world.alice, values=ae_values())
    event = ae_update(
        event=event,
        by=world.alice,
        values=ae_values(ctcae_grade=2),
        expected_version=1,
        reason="grade 2 on review of the notes",
    )
    entry = FormIndexEntry.objects.get(form_code="adverse_event", object_id=event.pk)
    assert (entry.version, entry.updated_at) == (2, event.updated_at)
    assert form_index_problems() == []


def test_a_downgrade_before_submission_removes_the_pending_report_from_the_index(world, patient):
    event = ae_create(patient=patient, by=world.alice, values=sae_values())
    ae_update(
        event=event,
        by=world.alice,
        values=sae_values(
            serious=False, sae_hospitalisation=False, ctcae_grade=2, serious_aware_at=None
        ),
        expected_version=1,
        reason="not hospitalised after all",
    )
    assert entries(patient) == [("adverse_event", "complete", 2)]
    assert form_index_problems() == []
