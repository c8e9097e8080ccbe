"""Asking a signed-in person for their password again, before an act that needs it.

An electronic signature (21 CFR 11.200), an emergency unblinding and an SAE submission
re-check who is at the keyboard, all through `reauthenticate()`. The check goes through
`django.contrib.auth.authenticate`, like the login page: a wrong password is recorded in
the audit trail (`reauth_failed`, by `ecrf.audit.signals`) and counts towards the account's
lockout like a failed login (django-axes, `ecrf.accounts.lockout`); a right one is recorded
too (`reauth`).

At the limit, or when the account is locked already (from the login page, elsewhere), the
re-entry is refused whatever the password and the session is ended: a re-entry guards
against someone using a session that is not theirs (a workstation left signed in), and
the one who just used up the tries must not go on entering data in that person's name.
The lockout page then says until when, as on the login page.
"""

from __future__ import annotations

from django.contrib.auth import authenticate, logout
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _

from ecrf.audit.models import AuthEvent
from ecrf.audit.signals import REAUTHENTICATION, auth_event_record

# What of the real request the check passes on: who and from where, never the form's
# fields (an unblinding's medical reason, an SAE narrative), which axes would store with
# each failed attempt.
PASSED_ON = ("REMOTE_ADDR", "HTTP_USER_AGENT", "HTTP_ACCEPT", "PATH_INFO")


def _probe(request) -> HttpRequest:
    probe = HttpRequest()
    if request is not None:
        probe.META = {key: request.META[key] for key in PASSED_ON if key in request.META}
        probe.path = probe.path_info = request.path_info
    setattr(probe, REAUTHENTICATION, True)
    return probe


def _end_session(request, username: str) -> None:
    """Sign the session out, and let axes' middleware answer with the lockout page (which
    reads until when from the credentials)."""
    if request is None:
        return
    if hasattr(request, "session"):
        logout(request)
    request.ecrf_signed_out = True
    request.axes_locked_out = True
    request.axes_credentials = {"username": username}


def reauthenticate(request, user, password: str, username: str | None = None) -> None:
    """Refuse (ValidationError on "username" or "password") unless the password is `user`'s.

    `username`, when the form asked for it, must be the user's own: nobody signs in
    somebody else's name, even knowing their password. `request` (None outside a web
    request) gives the address recorded with the attempt, and the session to end when the
    account is locked. Call it outside the act's transaction: a wrong password's record
    and its count towards the lockout must not roll back with the refused act.
    """
    if username is not None:
        username = username.strip()
        if not username:
            raise ValidationError({"username": _("Username: type your username.")})
        if username != user.get_username():
            raise ValidationError(
                {
                    "username": _(
                        "Username: this is not the username of the person signed in; only "
                        "you can sign in your name."
                    )
                }
            )
    if not password:
        raise ValidationError({"password": _("Password: type your password.")})
    probe = _probe(request)
    if authenticate(probe, username=user.get_username(), password=password) is None:
        if getattr(probe, "axes_locked_out", False):
            _end_session(request, user.get_username())
            raise ValidationError(
                {
                    "password": _(
                        "Password: too many wrong passwords; your account is locked and you "
                        "have been signed out. Try again later or ask your study's "
                        "administrator to unlock it."
                    )
                }
            )
        raise ValidationError({"password": _("Password: your password is not correct.")})
    auth_event_record(kind=AuthEvent.Kind.REAUTH, username=user.get_username(), request=probe)
