"""A visit to hang forms on, and a helper that saves a form as a service would."""

from __future__ import annotations

import pytest

from ecrf.patients.models import Visit


def make_visit(patient, code: str = "M0", sequence: int = 1) -> Visit:
    return Visit.objects.create(
        patient=patient, code=code, sequence=sequence, protocol_version=patient.protocol_version
    )


@pytest.fixture
def visit(world) -> Visit:
    """An M0 visit of a Bordeaux patient in the imatinib trial."""
    return make_visit(world.bxp_patients[0])


@pytest.fixture
def cohort_visit(world) -> Visit:
    """The V0 visit of the Sclero-JAK SSc participant."""
    return make_visit(world.ren_patients[0], code="V0")


@pytest.fixture
def make(world, visit):
    """`make(Model, **answers)` saves a form at `visit` (or at the `visit=` given)."""

    def make(model, *, at: Visit | None = None, **values):
        at = at or visit
        return model.objects.create(
            patient=at.patient,
            visit=at,
            protocol_version=at.protocol_version,
            entered_by=world.alice,
            **values,
        )

    return make
