"""Consented patients at two trial sites, and a helper that records an adverse event."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import translation

from ecrf.safety.services import ae_create
from tests.safety_screens.helpers import ae_values, consent


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def client() -> Client:
    """A browser that asks for English: the tests read the English messages (French is the
    default language, and its catalogue is complete)."""
    return Client(headers={"accept-language": "en"})


@pytest.fixture
def bxp_patient(world):
    return consent(world.bxp_patients[0], world.alice)


@pytest.fixture
def str_patient(world):
    return consent(world.str_patients[0], world.charlie)


@pytest.fixture
def record():
    def record(patient, by, **overrides):
        return ae_create(patient=patient, by=by, values=ae_values(**overrides))

    return record
