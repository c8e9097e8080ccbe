from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.e2e.conftest import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_bordeaux_investigator_sees_only_bordeaux_patients(live_server, browser_page, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "journey-password-2026")
    call_command("seed_demo")
    page = browser_page

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("investigator.bordeaux")
    page.get_by_label("Password").fill("journey-password-2026")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/studies/")
    page.get_by_role("link", name="NCT00479934 · Imatinib").click()
    page.wait_for_url("**/studies/NCT00479934/patients/")

    codes = page.locator("[data-testid=patient-table] tbody a.subject-code").all_inner_texts()
    page.screenshot(path=str(ARTIFACTS / "investigator-bordeaux-patient-list.png"), full_page=True)
    assert codes == [f"BXP-{n:03d}" for n in range(1, 7)]
    body = page.locator("body").inner_text()
    assert "STR-" not in body
    assert "Strasbourg" not in body
    assert "6 patients" in body
