"""An API client per persona: a Django test client sending the persona's own token."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from ecrf.api.tokens import token_create
from ecrf.crfs.services import crf_save
from ecrf.patients.services import patient_create
from ecrf.patients.visits import visit_record_date

# The exports storage in the test's own folder, as the export screen's tests have it.
from tests.exports.conftest import export_storage  # noqa: F401
from tests.two_factor import totp_device


class Api:
    def __init__(self, key: str):
        self.key = key
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_ACCEPT_LANGUAGE="en")

    def get(self, path, **params):
        return self.client.get(path, params)

    def put(self, path, body, **extra):
        data = body if isinstance(body, str) else json.dumps(body)
        return self.client.put(path, data, content_type="application/json", **extra)


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api(world):
    """api(user) -> an Api with a new token of the user (a device first where the role
    needs one)."""

    made = []

    def make(user, *, days=30):
        totp_device(user)
        made.append(user)
        name = f"test {user.username} {len(made)}"
        _token, key = token_create(user=user, name=name, days=days)
        return Api(key)

    return make


@pytest.fixture
def scr(world):
    """A BXP patient whose screening visit is dated and whose consent is recorded."""
    day = timezone.localdate() - timedelta(days=10)
    patient = patient_create(study=world.rct, site=world.bxp, by=world.alice, screening_date=day)
    visit = visit_record_date(visit=patient.visits.get(code="SCR"), by=world.alice, visit_date=day)
    consent = {"consent_date": day, "consent_version": "2.1", "signed_by_investigator": True}
    crf_save(visit=visit, form_code="consent", values=consent, by=world.alice, expected_version=0)
    return visit
