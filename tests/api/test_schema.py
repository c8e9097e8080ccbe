"""The OpenAPI 3 schema: valid, generated without a warning, every operation with its error
bodies; the interactive docs served from this site, without inline code."""

from __future__ import annotations

import re

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(tmp_path) -> dict:
    out = tmp_path / "schema.yaml"
    # --fail-on-warn: an endpoint drf-spectacular cannot describe fails here.
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(out))
    return yaml.safe_load(out.read_text())


def test_the_schema_is_valid_and_every_operation_says_its_refusals(schema):
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) > 20
    for path, method, operation in operations:
        responses = operation["responses"]
        assert {"401", "404", "429"} <= set(responses), (method, path)
        if method in ("put", "post"):
            assert "400" in responses, (method, path)
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "errors"}
    stale = "/api/v1/studies/{study_code}/patients/{subject_code}/visits/{visit_code}/{repeat}/"
    assert "409" in schema["paths"][stale + "forms/{form_code}/"]["put"]["responses"]
    statuses = schema["components"]["schemas"]["PatientStatusEnum"]["enum"]
    assert {"screening", "enrolled", "completed"} <= set(statuses)


def test_the_schema_and_docs_are_public_and_the_docs_have_no_inline_code():
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    schema = client.get("/api/schema/").content.decode()
    # DRF's own words in English too, for a reader whose language is French.
    assert "The pagination cursor value." in schema
    assert "La valeur du curseur" not in schema
    page = client.get("/api/docs/").content.decode()
    assert not re.search(r"<script>|<style>|style=", page)
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle" in page
