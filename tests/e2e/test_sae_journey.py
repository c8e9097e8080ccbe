"""Browser journey: an investigator records a serious adverse event and submits the report."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from ecrf.notifications.models import OutboundEmail
from ecrf.patients.models import Patient
from ecrf.safety.models import AdverseEvent, SaeReport
from ecrf.safety.services import ae_create
from tests.e2e.conftest import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "journey-password-2026"


def test_investigator_records_a_serious_event_and_submits_the_initial_report(
    live_server, browser_page, monkeypatch
):
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    call_command("seed_demo")
    # The demo's patient whose M1 is overdue: enrolled, consented, no event of its own yet
    # beyond the demo's open SAE.
    patient = Patient.objects.get(study__code="NCT00479934", subject_code="BXP-004")
    before = set(AdverseEvent.objects.filter(patient=patient).values_list("pk", flat=True))
    page = browser_page

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("investigator.bordeaux")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/studies/")
    page.goto(f"{live_server.url}/studies/NCT00479934/patients/BXP-004/")
    page.get_by_test_id("casebook-ae").get_by_role("link", name="Open the log").click()
    page.get_by_role("link", name="Record an adverse event").click()

    form = page.get_by_test_id("ae-form")
    criterion = page.locator("#id_sae_hospitalisation")
    # Criteria appear only for a serious event. crf.js, loaded at the end of the page,
    # hides them once it runs: the browser may show the parsed form before that, so wait.
    expect(criterion).to_be_hidden()
    page.locator("#id_term").fill("Scleroderma renal crisis")
    onset = timezone.localdate() - timedelta(days=1)
    page.locator("#id_onset_date").fill(onset.isoformat())
    page.locator("#id_ongoing").check()
    page.locator("#id_ctcae_grade").select_option("4")
    form.locator("input[name=serious][value=yes]").check()
    criterion.check()
    page.locator("#id_sae_life_threatening").check()
    page.locator("#id_relatedness").select_option("unlikely")
    form.locator("input[name=expected][value=no]").check()
    page.locator("#id_action_taken").select_option("interrupted")
    page.locator("#id_outcome").select_option("not_recovered")
    aware = timezone.localtime() - timedelta(hours=2)
    page.locator("#id_aware_date").fill(aware.date().isoformat())
    page.locator("#id_aware_time").fill(aware.strftime("%H:%M"))
    page.get_by_role("button", name="Save", exact=True).click()

    clock = page.get_by_test_id("sae-clock")
    clock.wait_for()
    # Due 24 h after awareness; two hours (to the minute) are gone.
    assert re.search(r"Due in 2[12] h \d\d min", clock.inner_text())
    event = AdverseEvent.objects.exclude(pk__in=before).get(patient=patient)
    assert (event.serious, event.ctcae_grade, event.sae_life_threatening) == (True, 4, True)
    page.screenshot(path=str(ARTIFACTS / "sae-before-submission.png"), full_page=True)

    submit = page.get_by_test_id("submit-initial")
    submit.get_by_label("Narrative").fill("Hypertensive crisis with acute kidney injury; admitted.")
    submit.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Submit to the sponsor").click()
    page.get_by_text("Initial SAE report submitted").wait_for()
    page.screenshot(path=str(ARTIFACTS / "sae-submitted.png"), full_page=True)

    report = SaeReport.objects.get(adverse_event=event, number=0)
    assert report.submitted_at is not None and report.submitted_at <= report.due_at
    email = OutboundEmail.objects.get(dedupe_key=f"sae-report:{report.pk}")
    assert "Scleroderma renal crisis" in email.subject
    assert email.recipients == ["pharmacovigilance@chu-bordeaux.example"]


def test_an_event_known_for_days_turned_serious_asks_when_and_is_not_overdue(
    live_server, browser_page, monkeypatch
):
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    call_command("seed_demo")
    patient = Patient.objects.get(study__code="NCT00479934", subject_code="BXP-004")
    alice = get_user_model().objects.get(username="investigator.bordeaux")
    known = (timezone.now() - timedelta(days=5)).replace(second=0, microsecond=0)
    event = ae_create(
        patient=patient,
        by=alice,
        values={
            "term": "Fever",
            "onset_date": timezone.localdate(known).isoformat(),
            "ongoing": True,
            "ctcae_grade": 2,
            "serious": False,
            "relatedness": "unlikely",
            "expected": True,
            "action_taken": "none",
            "outcome": "not_recovered",
            "aware_at": known,
        },
    )
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("investigator.bordeaux")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/studies/")
    page.goto(
        f"{live_server.url}/studies/NCT00479934/patients/BXP-004/adverse-events/{event.number}/edit/"
    )

    form = page.get_by_test_id("ae-form")
    question = page.get_by_label("When did the site become aware that the event is serious?")
    expect(question).to_be_hidden()
    form.locator("input[name=serious][value=yes]").check()
    expect(question).to_be_visible()
    # Prefilled with now, in site time.
    expect(question).to_have_value(timezone.localdate().isoformat())
    page.locator("#id_sae_hospitalisation").check()
    page.locator("#id_ctcae_grade").select_option("3")
    page.get_by_label("Reason for change").fill("Admitted to hospital today")
    page.screenshot(path=str(ARTIFACTS / "sae-turning-serious-form.png"), full_page=True)
    page.get_by_role("button", name="Save", exact=True).click()

    clock = page.get_by_test_id("sae-clock")
    clock.wait_for()
    assert re.search(r"Due in 2[34] h", clock.inner_text())
    expect(page.get_by_test_id("overdue")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "sae-serious-later.png"), full_page=True)
    event.refresh_from_db()
    assert event.aware_at == known and event.serious_aware_at > known + timedelta(days=4)
