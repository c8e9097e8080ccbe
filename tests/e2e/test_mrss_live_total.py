"""Browser journey: the investigator fills the M0 mRSS and sees the total before saving."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from ecrf.crfs.enrolment import patient_enrol
from ecrf.crfs.models import Consent, Mrss
from ecrf.crfs.services import crf_save
from ecrf.patients.models import Patient
from ecrf.patients.services import patient_create
from ecrf.patients.visits import visit_record_date
from ecrf.scoring import mrss as mrss_scoring
from ecrf.studies.models import Site, Study
from tests.e2e.conftest import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "journey-password-2026"


def enrolled_patient(by) -> Patient:
    """A Bordeaux patient screened, eligible and enrolled today, with M0 open."""
    study = Study.objects.get(code="NCT00479934")
    today = timezone.localdate()
    scr = today - timedelta(days=10)
    patient = patient_create(
        study=study, site=Site.objects.get(code="BXP"), by=by, screening_date=scr
    )
    visit = visit_record_date(visit=patient.visits.get(code="SCR"), by=by, visit_date=scr)

    def save(code, values):
        crf_save(visit=visit, form_code=code, values=values, by=by, expected_version=0)

    save("consent", {"consent_date": scr, "consent_version": "2.1", "signed_by_investigator": True})
    save("demographics", {"birth_year": 1970, "sex": "M"})
    save(
        "medical_history",
        {
            "ssc_type": "systemic",
            "diagnosis_year": 2020,
            **dict.fromkeys(
                ["en_coup_de_sabre", "ongoing_cancer", "uncontrolled_diabetes",
                 "chronic_kidney_failure", "chronic_hepatitis", "hiv_infection"],
                False,
            ),
        },
    )  # fmt: skip
    save(
        "mrss", {"exam_date": scr, "assessor": "Dr Martin", **dict.fromkeys(mrss_scoring.AREAS, 2)}
    )
    save("echocardiography", {"exam_date": scr, "lvef_pct": 60})
    labs = {"sample_date": scr, "hemoglobin_g_dl": Decimal("13.5")}
    labs |= {"neutrophils_x10e9_l": Decimal("4"), "platelets_x10e9_l": Decimal("250")}
    for analyte, value, uln in (
        ("bilirubin_umol_l", 10, 17),
        ("ast_u_l", 20, 40),
        ("alt_u_l", 25, 45),
        ("creatinine_umol_l", 70, 100),
    ):
        labs |= {analyte: Decimal(value), f"{analyte}_uln": Decimal(uln)}
    save("safety_labs", labs)
    criteria = patient.protocol_version.protocol.eligibility_for(None)
    save("eligibility", {"answers": {c.id: c.kind == "inclusion" for c in criteria}})
    return patient_enrol(patient=patient, by=by, day0_date=today)


def test_investigator_sees_the_mrss_total_update_before_saving(
    live_server, browser_page, monkeypatch
):
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    call_command("seed_demo")
    investigator = get_user_model().objects.get(username="investigator.bordeaux")
    patient = enrolled_patient(investigator)
    page = browser_page

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("investigator.bordeaux")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/studies/")
    base = f"{live_server.url}/studies/NCT00479934/patients/{patient.subject_code}"
    page.goto(f"{base}/visits/M0/1/forms/mrss/")

    live = page.get_by_test_id("live-total")
    page.locator("#id_exam_date").fill(timezone.localdate().isoformat())
    page.locator("#id_assessor").fill("Dr Martin")
    # One click per area on the grid's radio buttons (value 3 is the fourth button).
    for area in mrss_scoring.AREAS[:5]:
        page.locator(f"#id_{area}_3").click()
    # Waited for by Playwright's own assertions: a string polled by wait_for_function is
    # an eval, which the pages' CSP refuses.
    expect(live).to_contain_text("—")
    for area in mrss_scoring.AREAS[5:-1]:
        page.locator(f"#id_{area}_1").click()
    # The last area by keyboard: focus its 0, arrow right moves to (and checks) 1.
    last = mrss_scoring.AREAS[-1]
    page.locator(f"#id_{last}_0").focus()
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    # 5 areas at 3 and 12 at 1: the page shows 27 while nothing is saved yet.
    expect(live).to_contain_text("27")
    assert "27" in live.inner_text()
    assert not Mrss.objects.filter(patient=patient, visit__code="M0").exists()
    page.screenshot(path=str(ARTIFACTS / "mrss-live-total.png"), full_page=True)

    # At least 28px, read with a retrying assertion: the total may be swapped in again by
    # htmx meanwhile, and a detached element has no computed style.
    expect(live.locator("strong")).to_have_css(
        "font-size", re.compile(r"^(2[89]|[3-9]\d|\d{3,})(\.\d+)?px$")
    )
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url("**/visits/M0/1/")
    assert Mrss.objects.get(patient=patient, visit__code="M0").total == 27
    # Reopened: the saved total is there at once, and the scores are checked.
    page.goto(f"{base}/visits/M0/1/forms/mrss/")
    assert "27" in page.get_by_test_id("live-total").inner_text()
    assert page.locator(f"#id_{last}_1").is_checked()
    page.screenshot(path=str(ARTIFACTS / "mrss-grid-en.png"), full_page=True)
    page.context.add_cookies([{"name": "django_language", "value": "fr", "url": live_server.url}])
    page.reload()
    page.screenshot(path=str(ARTIFACTS / "mrss-grid-fr.png"), full_page=True)
    page.context.clear_cookies(name="django_language")

    page.goto(f"{base}/")
    page.get_by_test_id("casebook").wait_for()
    # The consent saved Yes at screening: reopened it still reads Yes, and saving it
    # again as shown keeps it (in the page and in the database).
    page.goto(f"{base}/visits/SCR/1/forms/consent/")
    assert page.locator("#id_signed_by_investigator_0").is_checked()
    page.locator("#id_reason").fill("Relecture")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url("**/visits/SCR/1/")
    assert Consent.objects.get(patient=patient).signed_by_investigator is True
    page.goto(f"{base}/visits/SCR/1/forms/consent/")
    assert page.locator("#id_signed_by_investigator_0").is_checked()
    page.goto(f"{base}/")
    page.get_by_test_id("casebook").wait_for()
    page.screenshot(path=str(ARTIFACTS / "casebook.png"), full_page=True)
    assert "27" in page.get_by_test_id("mrss-chart").inner_html()
