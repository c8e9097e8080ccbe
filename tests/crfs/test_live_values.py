"""The live box: totals and bands by their labels, on reopen as well as while typing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ecrf.crfs.services import crf_save
from tests.crfs.test_round_trip import open_visit

pytestmark = pytest.mark.django_db

# One "a lot" (2) and six "a little" (1): 8, the moderate band (6..10).
DLQI_8 = {"q1": "a_lot", **{f"q{i}": "a_little" for i in (2, 3, 4, 5, 6, 8)}, "q7a": "no",
          "q7b": "not_at_all", "q9": "not_at_all", "q10": "not_at_all"}  # fmt: skip


def url(visit, form_code, name="crfs:form"):
    patient = visit.patient
    return reverse(
        name, args=[patient.study.code, patient.subject_code, visit.code, visit.repeat, form_code]
    )


def test_a_saved_dlqi_shows_its_total_and_band_label_on_reopen(world, client):
    visit = open_visit(world, "dlqi")
    crf_save(visit=visit, form_code="dlqi", values=DLQI_8, by=world.alice, expected_version=0)
    client.force_login(world.alice)
    page = client.get(url(visit, "dlqi"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<strong data-testid="live-1">8</strong>' in page
    assert '<strong data-testid="live-2">Moderate effect</strong>' in page


def test_the_preview_shows_the_band_and_the_ssc_conclusion_by_label(world, client):
    client.force_login(world.alice)
    visit = open_visit(world, "dlqi")
    preview = client.post(url(visit, "dlqi", "crfs:preview"), DLQI_8, HTTP_ACCEPT_LANGUAGE="en")
    assert "Moderate effect" in preview.content.decode()

    visit = open_visit(world, "ssc_classification")
    client.force_login(world.rene)
    answers = {"skin_thickening_proximal_mcp": "true", "fingers_spared": "false"}
    answers["better_explained_by_other_disorder"] = "false"
    preview = client.post(
        url(visit, "ssc_classification", "crfs:preview"), answers, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert '<strong data-testid="live-2">Classified as SSc</strong>' in preview.content.decode()
