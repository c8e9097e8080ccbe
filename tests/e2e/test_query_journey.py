"""Browser journey: the monitor's query is marked on the field of the CRF, and the
investigator answers it from the query's page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from ecrf.patients.models import FormIndexEntry
from ecrf.review.models import Query
from ecrf.review.queries import query_raise
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_french_casebook_and_stale_save import log_in
from tests.e2e.test_french_casebook_and_stale_save import patient as patient  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_investigator_sees_the_query_on_the_field_and_answers_it(
    live_server,
    browser_page,
    patient,  # noqa: F811
):
    monitor = get_user_model().objects.get(username="monitor.bordeaux")
    consent = FormIndexEntry.objects.get(patient=patient, form_code="consent")
    query = query_raise(
        by=monitor, entry=consent, field="consent_version", text="Which version was signed?"
    )
    page = browser_page
    log_in(page, live_server)
    base = f"{live_server.url}/studies/NCT00479934"
    page.goto(f"{base}/patients/{patient.subject_code}/visits/SCR/1/forms/consent/")
    mark = page.locator("#div_id_consent_version .query-mark")
    assert mark.is_visible()
    assert page.locator(f"#query-{query.pk}").inner_text().count("Which version was signed?")
    page.screenshot(path=str(ARTIFACTS / "crf-query-mark.png"), full_page=True)
    page.goto(f"{base}/review/queries/{query.pk}/")
    page.locator("#id_answer_text").fill("Version 2.1, as on the signed copy.")
    page.locator("[data-testid=answer-form] button[type=submit]").click()
    page.wait_for_load_state()
    assert (
        "Version 2.1, as on the signed copy."
        in page.locator("[data-testid=query-thread]").inner_text()
    )
    page.screenshot(path=str(ARTIFACTS / "query-answered.png"), full_page=True)
    assert Query.objects.get(pk=query.pk).status == "answered"
