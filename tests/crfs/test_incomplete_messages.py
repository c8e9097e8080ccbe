"""A form saved incomplete says what is missing, by label; the stale save keeps what was typed;
an error is shown once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from ecrf.crfs.models import Mrss
from tests.clock import TODAY
from tests.walks.helpers import (
    date_visit,
    fill,
    flashed,
    form_url,
    iso,
    mrss_data,
    saved,
    screen,
)

pytestmark = pytest.mark.django_db
SCR_DAY = TODAY - timedelta(days=5)


@pytest.fixture
def client(client, world):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.force_login(world.alice)
    return client


@pytest.fixture
def screened(client, world):
    patient = screen(client, world.rct, site="BXP", screening_date=SCR_DAY)
    saved(date_visit(client, patient, "SCR", SCR_DAY))
    consent = {
        "consent_date": iso(SCR_DAY),
        "consent_version": "v2",
        "signed_by_investigator": "true",
    }
    saved(fill(client, patient, "SCR", "consent", consent))
    return patient


def test_an_incomplete_save_names_the_missing_fields_by_label(client, screened):
    data = {**mrss_data(SCR_DAY, 1), "face": "", "abdomen": ""}
    response = fill(client, screened, "SCR", "mrss", data)
    saved(response)
    assert flashed(response)[-1] == (
        "Form saved, still in progress: missing Face, Abdomen (or give the not-assessable reason)."
    )
    page = client.get(form_url(screened, "SCR", "mrss")).content.decode()
    assert "Still in progress: missing Face, Abdomen (or give the not-assessable reason)." in page
    visit_page = client.get(response.url).content.decode()
    assert "Missing: Face, Abdomen (or give the not-assessable reason)" in visit_page


def test_a_complete_save_just_says_saved(client, screened):
    response = fill(client, screened, "SCR", "mrss", mrss_data(SCR_DAY, 1))
    assert flashed(response)[-1] == "Form saved."


def test_a_form_error_is_shown_once(client, world):
    patient = screen(client, world.rct, site="BXP", screening_date=SCR_DAY)
    response = fill(client, patient, "SCR", "consent", {"consent_date": iso(SCR_DAY)})
    assert response.content.decode().count("Date visit SCR before entering its forms.") == 1


def test_the_stale_page_holds_the_current_form_and_what_was_typed(client, world, screened):
    url = form_url(screened, "SCR", "mrss")
    saved(fill(client, screened, "SCR", "mrss", mrss_data(SCR_DAY, 1)))
    # Bob saves version 2 while Alice still has version 1 open.
    client.force_login(world.bob)
    saved(
        client.post(
            url, {**mrss_data(SCR_DAY, 1), "face": "3", "version": 1, "reason": "re-read the sheet"}
        )
    )
    client.force_login(world.alice)
    mine = {
        **mrss_data(SCR_DAY, 1),
        "face": "2",
        "abdomen": "0",
        "version": 1,
        "reason": "typo in face",
    }
    response = client.post(url, mine)
    assert response.status_code == 409
    body = response.content.decode()
    assert "<title>Saved by someone else · Modified Rodnan skin score (mRSS)" in body
    rows = response.context["differences"]
    assert [(r["label"], r["saved"], r["typed"], r["raw"]) for r in rows] == [
        ("Face", "3 severe", "2 moderate", "2"),
        ("Abdomen", "1 mild", "0 normal", "0"),
    ]
    # On the page, per field label: what is saved now and what Alice typed, side by side.
    shown = [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r'<tr data-stale-row="\w+">(.*?)</tr>', body, re.S)
    ]
    assert [cells[:3] for cells in shown] == [
        ["Face", "3 severe", "2 moderate"],
        ["Abdomen", "1 mild", "0 normal"],
    ]
    form = response.context["form"]
    assert (form["version"].value(), form["face"].value(), form["reason"].value()) == (
        2,
        3,
        "typo in face",
    )
    assert 'src="/static/js/stale.js"' in body and "<script>" not in body
    mrss = Mrss.objects.get(visit__patient=screened)
    assert (mrss.face, mrss.version) == (3, 2)
    # Saving from that page, with Alice's values put back, is an ordinary change.
    saved(client.post(url, {**mine, "version": 2}))
    mrss.refresh_from_db()
    assert (mrss.face, mrss.abdomen, mrss.version) == (2, 0, 3)
