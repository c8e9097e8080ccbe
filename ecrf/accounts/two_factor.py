"""Two-factor login (django-otp): who needs it, enrolment, the code after the password, reset.

A TOTP device (an authenticator app, enrolled from a QR code) and single-use backup codes
(django-otp's static device, shown once at enrolment). Monitors, data managers and
administrators (any active membership with those roles) and superusers see no study page
before a second factor (`TwoFactorRequiredMiddleware`); site staff may enrol from their
menu. Every enrolment, accepted or refused code and reset is an `AuthEvent`.

A wrong code also sends `user_login_failed` (as a wrong password does), so that a lockout
counting failed logins counts it too; django-otp itself slows down guessing: each device
refuses any code for 2^n seconds after n failures in a row.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from ecrf.accounts.access import held
from ecrf.accounts.models import Membership, Role, account_id
from ecrf.audit.models import AuthEvent
from ecrf.audit.signals import client_of

# Roles that review or administer every patient of a site or a study: their accounts
# need a second factor (21 CFR 11.300, compliance.md).
TWO_FACTOR_ROLES = frozenset({Role.MONITOR, Role.DATA_MANAGER, Role.ADMIN})
DEVICE_NAME = "authenticator app"
BACKUP_NAME = "backup codes"


def two_factor_required(user) -> bool:
    """Whether the account must pass a second factor before any study page (one query)."""
    if account_id(user) is None:
        return False
    if user.is_superuser:
        return True
    return any(m.role in TWO_FACTOR_ROLES for m in held(user))


def confirmed_totp_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def backup_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def _record(kind, *, user, request, by=None, reason="") -> AuthEvent:
    return AuthEvent.objects.create(
        kind=kind,
        user=user,
        username=user.get_username(),
        by=by,
        reason=reason,
        **client_of(request),
    )


def totp_device_pending(*, user) -> TOTPDevice:
    """The unconfirmed device whose QR code the enrolment page shows (made on first visit).

    Refused once the account has a confirmed device: a second one is enrolled only after
    an administrator's reset, never by whoever knows the password alone.
    """
    if confirmed_totp_device(user) is not None:
        raise PermissionDenied(_("Two-factor login is already set up for your account."))
    with transaction.atomic():
        device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def _refused(request, user, kind=AuthEvent.Kind.OTP_FAILED) -> None:
    _record(kind, user=user, request=request)
    # Counted by a lockout that listens to failed logins; the audit's own receiver skips
    # it, the row above being the record.
    user_login_failed.send(
        sender=__name__,
        credentials={"username": user.get_username(), "two_factor": True},
        request=request,
    )


def _clean_code(code: str) -> str:
    return "".join((code or "").split()).lower()


def _app_code_matches(device: TOTPDevice, code: str) -> bool:
    """The cleaned code is the one the device's app shows now (django-otp throttles)."""
    return code.isdigit() and len(code) == device.digits and device.verify_token(code)


def totp_enrol(*, request, user, device: TOTPDevice, code: str) -> list[str]:
    """Confirm the device with a code from the app; return the new backup codes (shown once).

    The session counts as verified with the new device. Refused (ValidationError on "code")
    when the code is wrong; the refusal is recorded.
    """
    code = _clean_code(code)
    if not code:
        raise ValidationError({"code": _("Code: type the 6 digits your app shows.")})
    if device.user_id != user.pk or device.confirmed:
        raise PermissionDenied(_("This enrolment is not yours or is already finished."))
    if not _app_code_matches(device, code):
        _refused(request, user)
        raise ValidationError(
            {
                "code": _(
                    "Code: this is not the code your app shows for this account; type the "
                    "6 digits shown now (check the phone's clock if it keeps failing)."
                )
            }
        )
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _new_backup_codes(user)
        _record(AuthEvent.Kind.OTP_ENROLLED, user=user, request=request)
    _verified(request, device)
    return codes


def _new_backup_codes(user) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    backup = StaticDevice.objects.create(user=user, name=BACKUP_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(settings.TWO_FACTOR_BACKUP_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=backup, token=c) for c in codes)
    return codes


def backup_codes_renew(*, request, user, code: str) -> list[str]:
    """A new set of backup codes for the owner of a confirmed device, the old ones void:
    after a code from the app (possession of the device, not only of the session). The
    codes are shown once; the event is audited."""
    device = confirmed_totp_device(user)
    if device is None:
        raise ValidationError(_("Set up two-factor login first: there are no backup codes yet."))
    if not _app_code_matches(device, _clean_code(code)):
        _refused(request, user)
        raise ValidationError(
            {"code": _("Code: type the 6 digits your authenticator app shows now.")}
        )
    with transaction.atomic():
        codes = _new_backup_codes(user)
        _record(AuthEvent.Kind.OTP_BACKUP_NEW, user=user, request=request)
    return codes


def _verified(request, device) -> None:
    # A new session key once the second factor is given: a key seen before it is worthless.
    request.session.cycle_key()
    otp_login(request, device)


def two_factor_verify(*, request, user, code: str) -> AuthEvent:
    """The second factor after the password: a code from the app (6 digits) or one of the
    backup codes (used up). Marks the session verified; the event says which was used.

    Refused (ValidationError on "code") when the code is wrong or the device is waiting
    after failures; the refusal is recorded.
    """
    code = _clean_code(code)
    if not code:
        raise ValidationError({"code": _("Code: type the code your app shows, or a backup code.")})
    if code.isdigit():
        device, kind = confirmed_totp_device(user), AuthEvent.Kind.OTP_VERIFIED
    else:
        device = StaticDevice.objects.filter(user=user, confirmed=True).first()
        kind = AuthEvent.Kind.OTP_BACKUP_USED
    if device is not None:
        allowed, why = device.verify_is_allowed()
        if not allowed:
            _refused(request, user)
            raise ValidationError(
                {
                    "code": _(
                        "Code: too many wrong codes in a row; wait a few seconds, then type "
                        "the code shown now."
                    )
                }
            )
        with transaction.atomic():
            device = type(device).objects.select_for_update().get(pk=device.pk)
            accepted = device.verify_token(code)
        if accepted:
            event = _record(kind, user=user, request=request)
            _verified(request, device)
            return event
    _refused(request, user)
    raise ValidationError(
        {
            "code": _(
                "Code: not accepted. Type the 6 digits your app shows now, or one of your "
                "backup codes not used yet."
            )
        }
    )


def two_factor_reset(*, user, by, reason: str, request=None) -> AuthEvent:
    """Remove a person's devices and backup codes after a lost phone, with the reason.

    Allowed to a superuser and to an administrator of one of the person's studies. The
    person then signs in with their password and enrols a new device; sessions verified
    with the old device are no longer verified (django-otp's middleware finds no device).
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(
            {"reason": _("Reason: say why the two-factor devices are reset (e.g. phone lost).")}
        )
    if not _may_reset(by, user):
        raise PermissionDenied(
            _(
                "Your role does not allow you to reset two-factor login for this person "
                "(administrators of their studies only)."
            )
        )
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        return _record(AuthEvent.Kind.OTP_RESET, user=user, request=request, by=by, reason=reason)


def _may_reset(by, user) -> bool:
    by_id = account_id(by)
    if by_id is None:
        return False
    if by.is_superuser:
        return True
    their_studies = Membership.objects.held_by(user.pk).values("study_id")
    return (
        Membership.objects.held_by(by_id)
        .filter(role=Role.ADMIN, study_id__in=their_studies)
        .exists()
    )
