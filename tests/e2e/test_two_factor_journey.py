"""Browser journey: the data manager, asked for a second factor after her password, enrols an
authenticator app from the QR code's secret key, keeps her backup codes, logs out, and logs
in again with her password and a code of the app. The codes are computed here as the
phone's app would compute them (RFC 6238, django-otp's own TOTP)."""

from __future__ import annotations

from base64 import b32decode

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from ecrf.audit.models import AuthEvent
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD
from tests.two_factor import totp_code

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def log_in_with_password(page, live_server) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_username").fill("diane")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()


def test_the_data_manager_enrols_an_authenticator_app_and_logs_in_with_a_code(
    live_server, browser_page, world
):
    page = browser_page
    page.set_default_timeout(15_000)
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    log_in_with_password(page, live_server)
    # No study page before the second factor: the login lands on the enrolment page.
    page.wait_for_url("**/accounts/two-factor/?next=%2Fstudies%2F")
    assert page.get_by_test_id("two-factor-required").is_visible()
    qr = page.get_by_test_id("two-factor-qr")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    secret = page.get_by_test_id("two-factor-secret").inner_text()
    page.screenshot(path=str(ARTIFACTS / "two-factor-1-enrolment.png"), full_page=True)

    # The phone's app, from the secret key typed in by hand.
    app = TOTP(b32decode(secret.replace(" ", "")))
    page.locator("#id_code").fill(f"{app.token():06d}")
    page.locator("form[data-testid=two-factor-setup] button[type=submit]").click()
    codes = page.get_by_test_id("backup-codes").locator("li").all_inner_texts()
    assert len(codes) == len(set(codes)) == 10
    page.get_by_test_id("continue").click()
    page.wait_for_url("**/studies/")
    assert world.rct.code in page.content()

    page.locator("nav form[action$='/logout/'] button").click()
    page.wait_for_url("**/accounts/login/")
    log_in_with_password(page, live_server)
    page.wait_for_url("**/accounts/two-factor/verify/**")
    device = TOTPDevice.objects.get(user=world.diane, confirmed=True)
    # A code of the next 30 s window when this one's was spent on the enrolment.
    page.locator("#id_code").fill(totp_code(device))
    page.locator("form[data-testid=two-factor-verify] button[type=submit]").click()
    page.wait_for_url("**/studies/")
    page.goto(f"{live_server.url}/studies/{world.rct.code}/patients/")
    assert world.bxp_patients[0].subject_code in page.content()

    kinds = list(
        AuthEvent.objects.filter(user=world.diane)
        .order_by("at", "id")
        .values_list("kind", flat=True)
    )
    assert kinds == [
        AuthEvent.Kind.LOGIN,
        AuthEvent.Kind.OTP_ENROLLED,
        AuthEvent.Kind.LOGOUT,
        AuthEvent.Kind.LOGIN,
        AuthEvent.Kind.OTP_VERIFIED,
    ]
