"""Browser journey: the investigator signs a visit (username and password the first time),
sees the signature on the visit page, and prints the casebook."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ecrf.review.models import Signature
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD
from tests.safety.conftest import CONSENT_DAY
from tests.walks.helpers import rct_pre_inclusion, screen

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_investigator_signs_a_visit_and_prints_the_casebook(
    live_server, browser_page, world, client
):
    client.force_login(world.alice)
    patient = screen(client, world.rct, site="BXP", screening_date=CONSENT_DAY)
    rct_pre_inclusion(client, patient, CONSENT_DAY)
    page = browser_page
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_username").fill("alice")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/studies/")
    visit_url = reverse("crfs:visit", args=[world.rct.code, patient.subject_code, "SCR", 1])
    page.goto(live_server.url + visit_url)
    page.get_by_test_id("sign").click()
    assert "accurate and complete" in page.get_by_test_id("attestation").inner_text()
    page.locator("#id_username").fill("alice")
    page.locator("#id_password").fill(PASSWORD)
    page.screenshot(path=ARTIFACTS / "signature-form.png", full_page=True)
    page.get_by_test_id("sign-form").locator("button[type=submit]").click()
    page.wait_for_url(f"**{visit_url}")
    block = page.get_by_test_id("signatures")
    assert f"Signed by {world.alice.get_full_name()}" in block.inner_text()
    page.screenshot(path=ARTIFACTS / "signature-visit.png", full_page=True)
    assert Signature.objects.filter(patient=patient, voided_at__isnull=True).count() == 1
    page.goto(
        live_server.url
        + reverse("review:casebook_print", args=[world.rct.code, patient.subject_code])
    )
    page.emulate_media(media="print")
    assert not page.locator("nav.navbar").is_visible()
    page.screenshot(path=ARTIFACTS / "casebook-print.png", full_page=True)
