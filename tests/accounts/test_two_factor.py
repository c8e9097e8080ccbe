"""Two-factor login: required for monitors, data managers and administrators before any study
page, optional for site staff; enrolment, the code after the password, single-use backup
codes, the audit of each, and an administrator's reset of a lost device with a reason."""

from __future__ import annotations

import io
from base64 import b32encode
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from ecrf.accounts.access import Role
from ecrf.accounts.two_factor import two_factor_required, two_factor_reset
from ecrf.audit.models import AuthEvent
from tests.factories import PASSWORD, MembershipFactory, UserFactory
from tests.two_factor import login_unverified, mark_verified, totp_code, totp_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def adele(world):
    """An administrator of the trial (all sites)."""
    user = UserFactory(username="adele")
    MembershipFactory(user=user, study=world.rct, site=None, role=Role.ADMIN)
    return user


def patients_url(world) -> str:
    return reverse("patients:list", args=[world.rct.code])


def events(user, kind) -> list[AuthEvent]:
    return list(AuthEvent.objects.filter(user=user, kind=kind))


def enrol(client, user) -> list[str]:
    """Enrol from the screens (the page's device, its code); return the backup codes."""
    client.get(reverse("two_factor:setup"))
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    response = client.post(reverse("two_factor:setup"), {"code": totp_code(device)})
    assert response.status_code == 200
    return response.context["codes"]


@pytest.mark.parametrize("persona", ["monica", "diane", "adele", "superuser"])
def test_reviewers_and_administrators_are_sent_to_enrolment_before_any_study_page(
    client, world, adele, persona
):
    user = (
        UserFactory(username="root", is_superuser=True, is_staff=True)
        if persona == "superuser"
        else {"monica": world.monica, "diane": world.diane, "adele": adele}[persona]
    )
    assert two_factor_required(user)
    login_unverified(client, user)
    for url in (patients_url(world), reverse("studies:chooser"), reverse("reminders:settings")):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == (
            reverse("two_factor:setup") + "?" + urlencode({"next": url})
        )


def test_with_a_device_enrolled_they_are_asked_for_the_code_instead(client, world):
    totp_device(world.monica)
    login_unverified(client, world.monica)
    response = client.get(patients_url(world) + "?page=2")
    assert response["Location"] == (
        reverse("two_factor:verify") + "?" + urlencode({"next": patients_url(world) + "?page=2"})
    )


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_site_staff_see_study_pages_without_a_second_factor(client, world, persona):
    user = getattr(world, persona)
    assert not two_factor_required(user)
    login_unverified(client, user)
    response = client.get(patients_url(world))
    assert response.status_code == 200
    assert world.bxp_patients[0].subject_code in response.content.decode()


def test_an_investigator_may_enrol_from_the_profile_page(client, world):
    login_unverified(client, world.alice)
    profile = client.get(reverse("reminders:settings")).content.decode()
    assert reverse("two_factor:setup") in profile
    page = client.get(reverse("two_factor:setup")).content.decode()
    assert "Optional for your role" in page or "Facultatif" in page
    assert len(enrol(client, world.alice)) == 10
    assert TOTPDevice.objects.get(user=world.alice).confirmed


def test_login_logout_language_and_two_factor_pages_stay_open_before_the_code(client, world):
    login_unverified(client, world.diane)
    assert client.get(reverse("two_factor:setup")).status_code == 200
    assert client.get(reverse("two_factor:qr")).status_code == 200
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("login")).status_code == 200


def test_the_enrolment_page_shows_the_qr_code_and_the_secret_of_a_pending_device(client, world):
    login_unverified(client, world.diane)
    page = client.get(reverse("two_factor:setup"), HTTP_ACCEPT_LANGUAGE="en")
    device = TOTPDevice.objects.get(user=world.diane)
    assert not device.confirmed
    html = page.content.decode()
    secret = b32encode(device.bin_key).decode()
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in html
    assert f'src="{reverse("two_factor:qr")}"' in html
    assert page["Cache-Control"].startswith("max-age=0") and "no-store" in page["Cache-Control"]
    qr = client.get(reverse("two_factor:qr"))
    assert qr["Content-Type"] == "image/svg+xml"
    assert qr.content.lstrip().startswith(b"<?xml") and b"<svg" in qr.content
    # Coming back shows the same device, not a new secret each time.
    client.get(reverse("two_factor:setup"))
    assert TOTPDevice.objects.filter(user=world.diane).count() == 1


def test_a_wrong_enrolment_code_confirms_nothing_and_is_recorded(client, world, fixed_clock):
    login_unverified(client, world.diane)
    client.get(reverse("two_factor:setup"))
    device = TOTPDevice.objects.get(user=world.diane)
    good = totp_code(device)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    response = client.post(reverse("two_factor:setup"), {"code": wrong}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "Code: this is not the code your app shows" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert not StaticToken.objects.filter(device__user=world.diane).exists()
    assert len(events(world.diane, AuthEvent.Kind.OTP_FAILED)) == 1
    assert not events(world.diane, AuthEvent.Kind.LOGIN_FAILED)
    assert client.get(patients_url(world)).status_code == 302


def test_the_right_enrolment_code_confirms_the_device_and_shows_the_backup_codes_once(
    client, world
):
    login_unverified(client, world.diane)
    codes = enrol(client, world.diane)
    assert len(codes) == len(set(codes)) == 10
    stored = set(
        StaticToken.objects.filter(device__user=world.diane).values_list("token", flat=True)
    )
    assert stored == set(codes)
    assert TOTPDevice.objects.get(user=world.diane).confirmed
    [enrolled] = events(world.diane, AuthEvent.Kind.OTP_ENROLLED)
    assert enrolled.username == "diane" and enrolled.by is None
    # The session is verified by the new device: study pages open.
    assert client.get(patients_url(world)).status_code == 200
    # The setup page now shows the status, never the codes again.
    status = client.get(reverse("two_factor:setup"), HTTP_ACCEPT_LANGUAGE="en")
    html = status.content.decode()
    assert "10 backup codes left." in html
    assert not any(code in html for code in codes)


def test_knowing_the_password_is_not_enough_to_enrol_a_second_device(client, world):
    device = totp_device(world.monica)
    login_unverified(client, world.monica)
    response = client.get(reverse("two_factor:setup"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("two_factor:verify"))
    assert client.get(reverse("two_factor:qr")).status_code == 403
    assert list(TOTPDevice.objects.filter(user=world.monica)) == [device]


def test_the_code_after_the_password_opens_the_study_pages_and_is_recorded(client, world):
    device = totp_device(world.monica)
    response = client.post(
        reverse("login") + "?" + urlencode({"next": patients_url(world)}),
        {"username": "monica", "password": PASSWORD, "next": patients_url(world)},
    )
    assert response["Location"] == patients_url(world)
    response = client.get(patients_url(world))
    verify_url = response["Location"]
    assert verify_url.startswith(reverse("two_factor:verify"))
    response = client.post(verify_url, {"code": totp_code(device), "next": patients_url(world)})
    assert response.status_code == 302 and response["Location"] == patients_url(world)
    assert client.get(patients_url(world)).status_code == 200
    [verified] = events(world.monica, AuthEvent.Kind.OTP_VERIFIED)
    assert verified.username == "monica"


def test_a_wrong_code_is_refused_recorded_and_counts_as_a_failed_login(client, world):
    device = totp_device(world.monica)
    login_unverified(client, world.monica)
    failed = []

    def receiver(sender, credentials, request=None, **kwargs):
        failed.append(credentials["username"])

    user_login_failed.connect(receiver, dispatch_uid="test-two-factor-failed")
    try:
        good = totp_code(device)
        response = client.post(
            reverse("two_factor:verify"),
            {"code": f"{(int(good) + 1) % 1_000_000:06d}"},
            HTTP_ACCEPT_LANGUAGE="en",
        )
    finally:
        user_login_failed.disconnect(dispatch_uid="test-two-factor-failed")
    assert response.status_code == 200
    assert "Code: not accepted." in response.content.decode()
    assert failed == ["monica"]
    assert len(events(world.monica, AuthEvent.Kind.OTP_FAILED)) == 1
    assert not events(world.monica, AuthEvent.Kind.LOGIN_FAILED)
    assert client.get(patients_url(world)).status_code == 302


def test_after_a_wrong_code_the_device_waits_before_the_next_try(client, world, fixed_clock):
    device = totp_device(world.monica)
    login_unverified(client, world.monica)
    wrong = f"{(int(totp_code(device)) + 1) % 1_000_000:06d}"
    assert client.post(reverse("two_factor:verify"), {"code": wrong}).status_code == 200
    response = client.post(
        reverse("two_factor:verify"), {"code": totp_code(device)}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "too many wrong codes" in response.content.decode()
    fixed_clock.shift(timedelta(seconds=5))
    response = client.post(reverse("two_factor:verify"), {"code": totp_code(device)})
    assert response.status_code == 302


def test_a_backup_code_logs_in_once(client, world):
    login_unverified(client, world.diane)
    codes = enrol(client, world.diane)
    first, second = Client(), Client()
    login_unverified(first, world.diane)
    response = first.post(reverse("two_factor:verify"), {"code": codes[3].upper()})
    assert response.status_code == 302
    assert first.get(patients_url(world)).status_code == 200
    assert len(events(world.diane, AuthEvent.Kind.OTP_BACKUP_USED)) == 1
    assert StaticToken.objects.filter(device__user=world.diane).count() == 9
    login_unverified(second, world.diane)
    response = second.post(reverse("two_factor:verify"), {"code": codes[3]})
    assert response.status_code == 200
    assert len(events(world.diane, AuthEvent.Kind.OTP_FAILED)) == 1
    assert second.get(patients_url(world)).status_code == 302


def test_an_administrator_resets_a_lost_device_with_a_reason(client, world, adele):
    login_unverified(client, world.monica)
    device = mark_verified(client, world.monica)
    assert client.get(patients_url(world)).status_code == 200
    backup = StaticDevice.objects.create(user=world.monica, name="backup codes")
    StaticToken.objects.create(device=backup, token="abcd2345")
    event = two_factor_reset(user=world.monica, by=adele, reason="Phone stolen on 14 December")
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    assert not StaticToken.objects.filter(device__user=world.monica).exists()
    assert (event.kind, event.user, event.by, event.reason) == (
        AuthEvent.Kind.OTP_RESET,
        world.monica,
        adele,
        "Phone stolen on 14 December",
    )
    # The session verified with the lost device is no longer verified: enrol anew.
    response = client.get(patients_url(world))
    assert response["Location"].startswith(reverse("two_factor:setup"))


def test_a_superuser_may_reset_too(world):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    totp_device(world.monica)
    two_factor_reset(user=world.monica, by=root, reason="New phone")
    assert not TOTPDevice.objects.filter(user=world.monica).exists()


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_reset_without_a_reason_is_refused(world, adele, reason):
    device = totp_device(world.monica)
    with pytest.raises(ValidationError) as refused, translation.override("en"):
        two_factor_reset(user=world.monica, by=adele, reason=reason)
    assert refused.value.message_dict["reason"][0].startswith("Reason: ")
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert not AuthEvent.objects.filter(kind=AuthEvent.Kind.OTP_RESET).exists()


def test_a_reset_by_anyone_but_an_administrator_of_their_studies_is_refused(world):
    device = totp_device(world.monica)
    other_admin = UserFactory(username="otto")
    MembershipFactory(user=other_admin, study=world.cohort, site=None, role=Role.ADMIN)
    for by in (world.diane, world.alice, other_admin, world.monica):
        with pytest.raises(PermissionDenied):
            two_factor_reset(user=world.monica, by=by, reason="Phone lost")
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert not AuthEvent.objects.filter(kind=AuthEvent.Kind.OTP_RESET).exists()


def test_the_reset_command_records_who_and_why_and_refuses_without_permission(world, adele):
    from django.core.management import CommandError, call_command

    totp_device(world.monica)
    with pytest.raises(CommandError, match="Your role does not allow"), translation.override("en"):
        call_command("two_factor_reset", "monica", by="diane", reason="Phone lost")
    assert TOTPDevice.objects.filter(user=world.monica).exists()
    call_command(
        "two_factor_reset", "monica", by="adele", reason="Phone lost", stdout=io.StringIO()
    )
    assert not TOTPDevice.objects.filter(user=world.monica).exists()
    [event] = events(world.monica, AuthEvent.Kind.OTP_RESET)
    assert (event.by, event.reason) == (adele, "Phone lost")


# -- new backup codes, the reset from the People and access page, the admin's password ---


def test_new_backup_codes_after_a_code_from_the_app_void_the_old_ones(client, world, fixed_clock):
    client.force_login(world.monica)
    device = mark_verified(client, world.monica)
    old = enrol_backup(world.monica)
    page = client.get(reverse("two_factor:setup"), HTTP_ACCEPT_LANGUAGE="en")
    assert "Get new backup codes" in page.content.decode()
    # A wrong code: nothing renewed, the refusal recorded, the form says which field.
    wrong = client.post(reverse("two_factor:setup"), {"code": "000000"}, HTTP_ACCEPT_LANGUAGE="en")
    assert wrong.status_code == 400
    assert "Code: type the 6 digits your authenticator app shows now." in wrong.content.decode()
    assert set(StaticToken.objects.values_list("token", flat=True)) == set(old)
    assert len(events(world.monica, AuthEvent.Kind.OTP_FAILED)) == 1
    # The code the app shows (after django-otp's pause for a wrong one): a new set, shown
    # once; the old codes no longer log in.
    fixed_clock.shift(timedelta(seconds=5))
    response = client.post(reverse("two_factor:setup"), {"code": totp_code(device)})
    codes = response.context["codes"]
    assert len(codes) == 10 and not set(codes) & set(old)
    assert set(StaticToken.objects.values_list("token", flat=True)) == set(codes)
    assert len(events(world.monica, AuthEvent.Kind.OTP_BACKUP_NEW)) == 1


def enrol_backup(user) -> list[str]:
    """The person's backup codes as enrolment left them."""
    from ecrf.accounts.two_factor import _new_backup_codes

    return _new_backup_codes(user)


def test_an_administrator_resets_a_device_from_the_people_page_with_a_reason(client, world, adele):
    totp_device(world.monica)
    client.force_login(adele)
    page = client.get(reverse("study_users", args=[world.rct.code]), HTTP_ACCEPT_LANGUAGE="en")
    membership = world.monica.memberships.get(study=world.rct)
    url = reverse("two_factor_reset", args=[world.rct.code, membership.pk])
    assert url in page.content.decode()
    # Without a reason: refused with the message, the device kept.
    refused = client.post(url, {"reason": ""}, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "Reason: This field is required." in refused.content.decode()
    assert TOTPDevice.objects.filter(user=world.monica).exists()
    response = client.post(url, {"reason": "Phone lost on the ward"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=world.monica).exists()
    (event,) = events(world.monica, AuthEvent.Kind.OTP_RESET)
    assert (event.by, event.reason) == (adele, "Phone lost on the ward")


def test_only_an_administrator_of_the_study_resets_from_the_people_page(client, world, adele):
    totp_device(world.alice)
    membership = world.alice.memberships.get(study=world.rct)
    url = reverse("two_factor_reset", args=[world.rct.code, membership.pk])
    client.force_login(world.diane)  # a data manager: no people page
    assert client.post(url, {"reason": "Phone lost"}).status_code == 403
    # Another study's page for this membership: not found.
    client.force_login(adele)
    other = reverse("two_factor_reset", args=[world.cohort.code, membership.pk])
    assert client.post(other, {"reason": "Phone lost"}).status_code == 404
    assert TOTPDevice.objects.filter(user=world.alice).exists()


def test_a_password_set_in_the_admin_asks_a_reason_and_records_who_and_why(client, world):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    client.force_login(root)
    url = reverse("admin:auth_user_password_change", args=[world.alice.pk])
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'name="reason"' in page
    new = {"password1": "a-new-long-password-2026", "password2": "a-new-long-password-2026"}
    refused = client.post(url, {**new, "usable_password": "true"}, HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 200
    assert "Reason for change" in refused.content.decode()
    world.alice.refresh_from_db()
    assert not world.alice.check_password(new["password1"])
    assert not events(world.alice, AuthEvent.Kind.PASSWORD_RESET)
    done = client.post(
        url, {**new, "usable_password": "true", "reason": "Forgotten, identity checked by phone"}
    )
    assert done.status_code == 302
    world.alice.refresh_from_db()
    assert world.alice.check_password(new["password1"])
    (event,) = events(world.alice, AuthEvent.Kind.PASSWORD_RESET)
    assert (event.by, event.reason) == (root, "Forgotten, identity checked by phone")
