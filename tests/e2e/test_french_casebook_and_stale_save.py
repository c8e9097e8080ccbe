"""Browser journeys: a French investigator reads the casebook in French, and a refused
stale save gives back what was typed with one click."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from ecrf.crfs.models import Echocardiography
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_mrss_live_total import PASSWORD, enrolled_patient

# The selected option's text fits between the select's paddings (the arrow sits in the right one).
FITS = """e => {
    const style = getComputedStyle(e);
    const context = document.createElement("canvas").getContext("2d");
    context.font = style.font;
    const text = context.measureText(e.options[e.selectedIndex].text).width;
    return text <= e.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
}"""
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server):
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_username").fill("investigator.bordeaux")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/studies/")


@pytest.fixture
def patient(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    call_command("seed_demo")
    return enrolled_patient(get_user_model().objects.get(username="investigator.bordeaux"))


def test_a_french_investigator_reads_the_casebook_in_french(live_server, browser_page, patient):
    page = browser_page
    page.context.add_cookies([{"name": "django_language", "value": "fr", "url": live_server.url}])
    log_in(page, live_server)
    page.goto(f"{live_server.url}/studies/NCT00479934/patients/{patient.subject_code}/")
    casebook = page.get_by_test_id("casebook")
    casebook.wait_for()
    page.screenshot(path=str(ARTIFACTS / "casebook-fr.png"), full_page=True)

    names = page.get_by_test_id("visit-name").all_inner_texts()
    assert names[:3] == ["Pré-inclusion", "Inclusion", "Mois 1"]
    rows = casebook.locator("tbody th").all_inner_texts()
    assert rows[:3] == ["Données démographiques", "Consentement éclairé", "Antécédents médicaux"]
    assert "Score cutané de Rodnan modifié (mRSS)" in rows
    assert not {"Demographics", "Informed consent", "Skin biopsy"} & set(rows)
    assert casebook.locator("thead th").first.inner_text() == "Formulaire"
    assert "saisie complète" in page.locator("main").inner_text()
    switch = page.locator("select[name=language]")
    assert switch.evaluate(FITS), "the language switch cuts its own name"
    assert page.locator("html").get_attribute("lang") == "fr"


def test_a_stale_save_puts_back_what_was_typed_with_one_click(live_server, browser_page, patient):
    page = browser_page
    log_in(page, live_server)
    url = (
        f"{live_server.url}/studies/NCT00479934/patients/{patient.subject_code}"
        "/visits/SCR/1/forms/echocardiography/"
    )
    page.goto(url)
    other = page.context.new_page()  # a colleague, or the same user in a second tab
    other.goto(url)
    other.locator("#id_lvef_pct").fill("55")
    other.locator("#id_reason").fill("Valeur relue sur le compte rendu")
    other.locator("form[data-crf] button[type=submit]").first.click()
    other.wait_for_url("**/visits/SCR/1/")
    other.close()
    assert Echocardiography.objects.get(patient=patient).lvef_pct == 55

    page.locator("#id_lvef_pct").fill("62")
    page.locator("#id_reason").fill("Valeur corrigée par l'investigateur")
    page.locator("form[data-crf] button[type=submit]").first.click()
    page.get_by_test_id("stale").wait_for()
    differences = page.get_by_test_id("stale-differences")
    # Per field label: the value now saved beside the one typed, nothing typed lost.
    rows = differences.locator("tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("td").all_inner_texts()[:3] == [
        "Left ventricular ejection fraction (%)",
        "55",
        "62",
    ]
    assert page.locator("#id_lvef_pct").input_value() == "55"  # the version now saved
    page.screenshot(path=str(ARTIFACTS / "stale-save.png"), full_page=True)

    page.locator("[data-stale-use-all]").click()
    assert page.locator("#id_lvef_pct").input_value() == "62"
    assert Echocardiography.objects.get(patient=patient).lvef_pct == 55  # nothing saved yet
    page.locator("#id_reason").fill("Valeur corrigée par l'investigateur")
    page.locator("form[data-stale-form] button[type=submit]").click()
    page.wait_for_url("**/visits/SCR/1/")
    assert Echocardiography.objects.get(patient=patient).lvef_pct == 62
