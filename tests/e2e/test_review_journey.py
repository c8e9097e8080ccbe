"""Browser journey of the monitors' review (issue 13), through the screens only: the monitor
raises a query on one mRSS area from the form's SDV page; the investigator sees it marked
on the CRF and corrects the value from the query's page; the monitor closes the query and
verifies the form; the investigator signs the visit; the data manager locks the casebook;
and the investigator can no longer change the mRSS, by the screens or by a direct POST.

The demo's users are French by default (`User.language`): nothing here sets the language,
so the screens follow the browser's English locale (see conftest), checked on every page.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from ecrf.accounts.two_factor import two_factor_required
from ecrf.crfs.models import Mrss
from ecrf.patients.models import DataLock, FormIndexEntry
from ecrf.review.models import Query, QueryMessage, SdvMark, Signature
from ecrf.review.signatures import canonical_payload, signature_digest, signature_valid
from ecrf.review.states import QueryStatus
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_french_casebook_and_stale_save import patient as patient  # noqa: F401
from tests.e2e.test_mrss_live_total import PASSWORD
from tests.two_factor import totp_code, totp_device

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
STUDY = "NCT00479934"
QUESTION = "The source note gives 0 for the right hand: please check the score."


def log_in_as(page, live_server, username: str) -> None:
    """A new session for `username` (the previous user's cookies go)."""
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/accounts/login/")
    user = get_user_model().objects.get(username=username)
    # Monitors and data managers give the code of their authenticator app after the password.
    device = totp_device(user) if two_factor_required(user) else None
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    if device is not None:
        page.wait_for_url("**/accounts/two-factor/verify/**")
        page.locator("#id_code").fill(totp_code(device))
        page.locator("form[data-testid=two-factor-verify] button[type=submit]").click()
    page.wait_for_url("**/studies/")
    assert page.locator("html").get_attribute("lang") == "en"


def shot(page, name: str) -> None:
    assert page.locator("html").get_attribute("lang") == "en", f"{name}: not in English"
    # At 1280 px the menu holds on one line (the study's name gives way), nothing scrolls sideways.
    assert page.locator("nav.navbar").bounding_box()["height"] < 64, f"{name}: the menu wraps"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280, f"{name}: too wide"
    page.screenshot(path=str(ARTIFACTS / f"review-{name}.png"), full_page=True)


def messages_shown(page) -> str:
    return " ".join(page.locator(".alert").all_inner_texts())


def test_query_correction_sdv_signature_and_lock(live_server, browser_page, patient):  # noqa: F811
    users = get_user_model().objects
    monitor = users.get(username="monitor.bordeaux")
    investigator = users.get(username="investigator.bordeaux")
    manager = users.get(username="datamanager")
    entry = FormIndexEntry.objects.get(patient=patient, form_code="mrss", visit__code="SCR")
    mrss = Mrss.objects.get(pk=entry.object_id)
    assert (mrss.hand_r, mrss.total, mrss.version) == (2, 34, 1)
    visit = entry.visit
    page = browser_page
    page.set_default_timeout(10_000)
    server = live_server.url
    sdv_url = server + reverse("review:form", args=[STUDY, entry.pk])
    crf_url = server + reverse("crfs:form", args=[STUDY, patient.subject_code, "SCR", 1, "mrss"])
    visit_url = server + reverse("crfs:visit", args=[STUDY, patient.subject_code, "SCR", 1])

    # 1. The monitor raises a query on the right hand from the form's SDV page.
    log_in_as(page, live_server, "monitor.bordeaux")
    page.goto(sdv_url)
    assert page.get_by_test_id("sdv-state").inner_text() == "SDV needed"
    raise_form = page.get_by_test_id("raise-form")
    raise_form.locator("#id_query_field").select_option("hand_r")
    raise_form.locator("#id_query_text").fill(QUESTION)
    shot(page, "1-sdv-raise-query")
    raise_form.locator("button[type=submit]").click()
    page.wait_for_url(sdv_url)
    query = Query.objects.get(entry=entry)
    assert (query.field, query.status, query.raised_by) == ("hand_r", QueryStatus.OPEN, monitor)
    assert f"Query #{query.pk} raised on" in messages_shown(page)
    assert QUESTION in page.get_by_test_id(f"form-query-{query.pk}").inner_text()

    # 2. The investigator sees the query on the right hand of the mRSS grid...
    log_in_as(page, live_server, "investigator.bordeaux")
    page.goto(crf_url)
    grid = page.get_by_test_id("mrss-grid")
    mark = grid.locator("#div_id_hand_r .query-mark")
    mark.wait_for()
    assert "right" in mark.inner_text()
    assert mark.get_attribute("href") == f"#query-{query.pk}"
    assert grid.locator(".query-mark").count() == 1  # the left hand has none
    assert QUESTION in page.locator(f"#query-{query.pk}").inner_text()
    shot(page, "2-crf-field-marked")
    # ... and corrects the value from the query's page.
    mark.click()
    page.locator(f"#query-{query.pk}").get_by_role("link", name=f"#{query.pk}").click()
    page.wait_for_url(f"**/review/queries/{query.pk}/")
    assert page.get_by_test_id("query-value").inner_text() == "2 moderate"
    correct = page.get_by_test_id("correct-form")
    assert "Correct the value" in correct.inner_text()
    shot(page, "2b-query-to-correct")
    correct.locator("#id_value").select_option("0")
    correct.locator("#id_text").fill("Rechecked on the source note: 0 on the right hand.")
    correct.locator("button[type=submit]").click()
    page.wait_for_url(f"**/review/queries/{query.pk}/")
    assert f"Query #{query.pk}: the value is corrected." in messages_shown(page)
    assert page.get_by_test_id("query-value").inner_text().startswith("0 ")
    thread = page.get_by_test_id("query-thread").inner_text()
    assert QUESTION in thread and "Rechecked on the source note" in thread
    shot(page, "3-query-corrected")
    mrss.refresh_from_db()
    assert (mrss.hand_r, mrss.hand_l, mrss.total, mrss.version) == (0, 2, 32, 2)
    # The CRF shows the corrected score and its total.
    page.get_by_role("link", name="Open the form").click()
    page.wait_for_url(crf_url)
    assert "32" in page.get_by_test_id("live-total").inner_text()
    assert page.locator("#id_hand_r_0").is_checked()
    assert "version 2" in page.locator("main").inner_text()
    query.refresh_from_db()
    assert query.status == QueryStatus.ANSWERED
    correction = QueryMessage.objects.get(query=query, kind="correction")
    assert (correction.by, correction.version) == (investigator, 2)
    event = Mrss.pgh_event_model.objects.get(pgh_obj_id=mrss.pk, version=2)
    assert event.pgh_context["reason"] == (
        f"Query #{query.pk}: Rechecked on the source note: 0 on the right hand."
    )

    # 3. The monitor reads the change in the audit trail (the investigator does not read it),
    # closes the query, then verifies the corrected form.
    log_in_as(page, live_server, "monitor.bordeaux")
    page.goto(server + reverse("patients:audit", args=[STUDY, patient.subject_code]))
    trail = page.locator("main").inner_text()
    assert f"Query #{query.pk}: Rechecked on the source note" in trail
    assert "Field: hand (dorsum), right" in trail and "hand_r" not in trail
    shot(page, "3b-audit-trail")
    page.goto(server + reverse("review:query", args=[STUDY, query.pk]))
    close = page.get_by_test_id("close-form")
    close.locator("#id_close_text").fill("Corrected as on the source note, thank you.")
    close.locator("button[type=submit]").click()
    page.wait_for_url(f"**/review/queries/{query.pk}/")
    assert f"Query #{query.pk}: closed." in messages_shown(page)
    query.refresh_from_db()
    assert query.status == QueryStatus.CLOSED and query.closed_at is not None
    page.goto(sdv_url)
    fields = page.get_by_test_id("sdv-fields")
    right_hand = fields.locator("tbody tr", has_text="hand (dorsum), right").locator("td")
    assert right_hand.nth(2).inner_text().startswith("0 ")  # the corrected value, to verify
    page.get_by_role("button", name="Verify the whole form").click()
    page.wait_for_url(sdv_url)
    assert page.get_by_test_id("sdv-state").inner_text() == "verified"
    assert "Verified by Sophie Bernard" in messages_shown(page)
    shot(page, "4-form-verified")
    entry.refresh_from_db()
    assert (entry.review_state, entry.review_version, entry.verified_by) == (
        "verified",
        2,
        monitor,
    )
    mark_row = SdvMark.objects.get(entry=entry)
    assert (mark_row.by, mark_row.version, mark_row.kind) == (monitor, 2, "verify")

    # 4. The investigator signs the visit: attestation, username and password.
    log_in_as(page, live_server, "investigator.bordeaux")
    page.goto(visit_url)
    page.get_by_test_id("sign").click()
    page.wait_for_url("**/sign/")
    assert "accurate and complete" in page.get_by_test_id("attestation").inner_text()
    assert page.get_by_test_id("printed-name").inner_text() == "Hélène Martin"
    page.locator("#id_username").fill("investigator.bordeaux")
    page.locator("#id_password").fill(PASSWORD)
    shot(page, "5-sign")
    page.get_by_test_id("sign-form").locator("button[type=submit]").click()
    page.wait_for_url(visit_url)
    assert "Signed by Hélène Martin" in page.get_by_test_id("signatures").inner_text()
    shot(page, "6-visit-signed")
    signature = Signature.objects.get(patient=patient, visit=visit)
    assert signature.is_valid and signature.signer == investigator
    assert signature.digest == signature_digest(canonical_payload(patient=patient, visit=visit))
    assert len(signature.digest) == 64 and signature_valid(signature)

    # 5. The data manager locks the casebook, with a reason.
    log_in_as(page, live_server, "datamanager")
    page.goto(server + reverse("review:casebook_lock", args=[STUDY, patient.subject_code]))
    lock_form = page.get_by_test_id("lock-form")
    lock_form.locator("input[name=kind][value=lock]").check()
    lock_form.locator("#id_reason").fill("Database lock of the screening data for the interim.")
    lock_form.locator("button[type=submit]").click()
    page.wait_for_url(f"**/patients/{patient.subject_code}/")
    banner = page.get_by_test_id("data-lock")
    assert "Thomas Dubois" in banner.inner_text()
    shot(page, "7-casebook-locked")
    assert "Locked by Thomas Dubois" in banner.inner_text()
    lock = DataLock.objects.get(patient=patient, lifted_at__isnull=True)
    assert (lock.level, lock.kind, lock.placed_by) == ("patient", "lock", manager)
    assert lock.reason == "Database lock of the screening data for the interim."

    events = Mrss.pgh_event_model.objects.filter(pgh_obj_id=mrss.pk).count()

    # 6. The investigator cannot change the mRSS any more: no Edit button, the form is
    # read-only with the lock said, and a direct POST of it is refused.
    log_in_as(page, live_server, "investigator.bordeaux")
    page.goto(visit_url)
    row = page.locator("tr", has_text="mRSS")
    assert row.get_by_role("link", name="View").is_visible()
    assert row.get_by_role("link", name="Edit").count() == 0
    page.goto(crf_url)
    assert page.get_by_test_id("data-lock").get_attribute("data-kind") == "lock"
    said = page.get_by_test_id("data-lock").inner_text()
    assert "locked by Thomas Dubois" in said and patient.subject_code in said
    assert page.get_by_role("button", name="Save", exact=True).count() == 0
    assert page.get_by_test_id("crf-read-only").get_attribute("disabled") is not None
    assert page.locator("#id_hand_r_0").is_checked() and page.locator("#id_hand_r_3").is_disabled()
    shot(page, "8a-locked-form")
    # The page's own form, posted anyway (a browser's tools undo what the page disables):
    # a changed score, a reason, and no button to press, so by script.
    page.evaluate("document.querySelector('[data-testid=crf-read-only]').disabled = false")
    page.locator("#id_hand_r_3").check()
    page.locator("#id_reason").fill("Trying to change the score after the lock.")
    with page.expect_navigation():
        page.evaluate("document.querySelector('form[data-crf]').submit()")
    refused = page.locator("form[data-crf] .alert-danger, [data-testid=data-lock]")
    assert "locked by Thomas Dubois" in " ".join(refused.all_inner_texts())
    shot(page, "8-edit-refused")
    mrss.refresh_from_db()
    entry.refresh_from_db()
    assert (mrss.hand_r, mrss.total, mrss.version, entry.version) == (0, 32, 2, 2)
    assert Mrss.pgh_event_model.objects.filter(pgh_obj_id=mrss.pk).count() == events
    assert Signature.objects.get(pk=signature.pk).is_valid
