"""Create, revoke and check personal API tokens (the one door for each, whatever the caller).

A key is `ecrf_` and 43 random URL-safe characters (256 bits); the database keeps its
SHA-256 and its first 12 characters. A hash, not a password hash: the key is random and
long, so a fast hash loses nothing, and each call looks it up in one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.accounts.two_factor import confirmed_totp_device, two_factor_required
from ecrf.api.models import ApiToken
from ecrf.audit.models import AuthEvent
from ecrf.audit.signals import client_of

KEY_PREFIX = "ecrf_"
PREFIX_LENGTH = 12
# How often a call records the token's last use: not a write on every call.
LAST_USED_EVERY = timedelta(minutes=1)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _record(kind: str, *, token: ApiToken, by, request) -> None:
    AuthEvent.objects.create(
        kind=kind,
        user=token.user,
        username=token.user.get_username(),
        by=None if by.pk == token.user_id else by,
        reason=f"API token “{token.name}” ({token.prefix}…)"[:300],
        **client_of(request),
    )


def needs_second_factor(user) -> bool:
    """Whether the account's tokens are refused: a role that needs two-factor login (monitor,
    data manager, administrator) and no confirmed device."""
    return two_factor_required(user) and confirmed_totp_device(user) is None


def token_create(*, user, name: str, days: int, request=None) -> tuple[ApiToken, str]:
    """A new token for the user's own account; returns it and its key, shown this once."""
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = [_("Name: say what the token is for, e.g. the nightly pull.")]
    elif len(name) > 100:
        errors["name"] = [_("Name: at most 100 characters.")]
    longest = settings.API_TOKEN_MAX_DAYS
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= longest:
        errors["days"] = [
            _("Valid for: a whole number of days from 1 to %(longest)d.") % {"longest": longest}
        ]
    if errors:
        raise ValidationError(errors)
    if needs_second_factor(user):
        raise PermissionDenied(
            _("Set up two-factor login first: your role needs it for API tokens too.")
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(
                user=user,
                name=name,
                prefix=key[:PREFIX_LENGTH],
                key_hash=key_hash(key),
                expires_at=timezone.now() + timedelta(days=days),
            )
            _record(AuthEvent.Kind.API_TOKEN_CREATED, token=token, by=user, request=request)
    except IntegrityError:
        raise ValidationError({"name": [_("You already have a token of that name.")]}) from None
    return token, key


def token_revoke(*, token: ApiToken, by, request=None) -> ApiToken:
    """Revoke a token: its owner's own, or any by a superuser. Revoking twice changes nothing."""
    if by.pk != token.user_id and not by.is_superuser:
        raise PermissionDenied(_("You may revoke only your own tokens."))
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            _record(AuthEvent.Kind.API_TOKEN_REVOKED, token=token, by=by, request=request)
    return token


class TokenRefused(Exception):
    """The key names no live token; the message says which of the reasons, for the caller."""


def token_check(key: str) -> ApiToken:
    """The live token of this key, with its user; its last use recorded (once a minute)."""
    token = ApiToken.objects.select_related("user").filter(key_hash=key_hash(key or "")).first()
    if token is None:
        raise TokenRefused(_("This API token is not known."))
    if token.revoked_at is not None:
        raise TokenRefused(_("This API token was revoked."))
    now = timezone.now()
    if token.expires_at <= now:
        raise TokenRefused(_("This API token expired; create a new one on your profile page."))
    if not token.user.is_active:
        raise TokenRefused(_("This account is deactivated."))
    if needs_second_factor(token.user):
        raise TokenRefused(
            _("Your role needs two-factor login: set it up before the API accepts your tokens.")
        )
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
