"""Browser journey under the Content-Security-Policy: the main pages (patient list, the
mRSS form with its htmx live total, the patient page, the export job page polling its
progress) run with no CSP violation in the console, and the language switch, now a
listener in static/js/language.js instead of an inline `onchange`, still switches."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from playwright.sync_api import expect

from ecrf.exports.jobs import export_job_create
from ecrf.exports.services import export_prepare
from ecrf.studies.models import Study
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_mrss_live_total import PASSWORD, enrolled_patient

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
STUDY = "NCT00479934"


def watch_console(page) -> list[str]:
    """Every console message and page error: a refused script, style or request shows
    here as "Refused to ... because it violates the following Content Security Policy"."""
    seen: list[str] = []
    page.on("console", lambda message: seen.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: seen.append(f"pageerror: {error}"))
    return seen


def violations(seen: list[str]) -> list[str]:
    return [m for m in seen if "Content Security Policy" in m or "Refused to" in m]


def test_main_pages_run_under_the_csp_and_the_language_switch_works(
    live_server, browser_page, monkeypatch
):
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    users = get_user_model().objects
    patient = enrolled_patient(users.get(username="investigator.bordeaux"))
    page = browser_page
    page.set_default_timeout(20_000)
    seen = watch_console(page)

    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_username").fill("investigator.bordeaux")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/studies/")
    response = page.goto(f"{live_server.url}/studies/{STUDY}/patients/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "no-store" in response.headers["cache-control"]
    assert patient.subject_code in page.locator("main").inner_text()

    # The mRSS form: htmx posts each change and swaps in the live total.
    base = f"{live_server.url}/studies/{STUDY}/patients/{patient.subject_code}"
    page.goto(f"{base}/visits/M0/1/forms/mrss/")
    before = page.get_by_test_id("live-total").inner_text()
    with page.expect_response(lambda r: r.request.method == "POST") as preview:
        page.locator("#id_face_3").click()
    assert preview.value.ok
    expect(page.get_by_test_id("live-total")).not_to_have_text(before)
    page.goto(f"{base}/")
    page.get_by_test_id("casebook").wait_for()

    # The language switch: choosing French reloads the page in French, no button pressed.
    assert page.locator("html").get_attribute("lang") == "en"
    with page.expect_navigation():
        page.get_by_test_id("language-select").select_option("fr")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.get_by_test_id("casebook").locator("thead th").first.inner_text() == "Formulaire"
    page.screenshot(path=str(ARTIFACTS / "csp-casebook-fr.png"), full_page=True)

    # The export job page of the data manager: progress.js polls the job while it waits
    # (no worker here: it stays queued).
    manager = users.get(username="datamanager")
    monkeypatch.setattr("ecrf.exports.jobs._dispatch", lambda job_id: None)
    job = export_job_create(request=export_prepare(study=Study.objects.get(code=STUDY), by=manager))
    client = Client()
    client.force_login(manager)
    page.context.clear_cookies()
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    with page.expect_response(lambda r: r.url.endswith(f"/exports/jobs/{job.pk}/progress/")) as p:
        page.goto(f"{live_server.url}/exports/jobs/{job.pk}/")
    assert p.value.json()["status"] == "queued"
    assert page.get_by_test_id("job-progress").get_attribute("data-status") == "queued"

    assert not violations(seen), "\n".join(seen)
    # And no script broke (the only console error left is the browser's /favicon.ico 404).
    assert not [m for m in seen if m.startswith("pageerror")], "\n".join(seen)


def test_an_inline_script_would_be_refused_and_reported_in_the_console(live_server, browser_page):
    """The console check above is a real one: an inline handler is refused and named."""
    page = browser_page
    seen = watch_console(page)
    page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate(
        """() => {
            const s = document.createElement("script");
            s.textContent = "document.body.dataset.ran = 'yes'";
            document.body.appendChild(s);
        }"""
    )
    assert page.locator("body").get_attribute("data-ran") is None
    assert violations(seen), "\n".join(seen)
