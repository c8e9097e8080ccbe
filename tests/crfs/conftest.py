"""A visit to hang forms on, and a helper that writes a form's row directly."""

from __future__ import annotations

import pytest

from ecrf.patients.models import Visit
from tests.factories import VisitFactory, crf_factory


def make_visit(patient, code: str = "M0", sequence: int = 1) -> Visit:
    return VisitFactory(patient=patient, code=code, sequence=sequence)


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
    """`make(Model, **answers)` writes a form's row at `visit` (or at the visit given as `at=`)."""

    def make(model, *, at: Visit | None = None, **values):
        return crf_factory(model)(visit=at or visit, entered_by=world.alice, **values)

    return make
