"""Asking a signed-in person for their password again, before an act that needs it.

An electronic signature (21 CFR 11.200) and an emergency unblinding re-check who is at the
keyboard. The check goes through `django.contrib.auth.authenticate`, like the login page:
a wrong password fires `user_login_failed` (written to the audit trail by
`ecrf.audit.signals`) and counts towards the account's lockout like a failed login.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def reauthenticate(request, user, password: str, username: str | None = None) -> None:
    """Refuse (ValidationError on "username" or "password") unless the password is `user`'s.

    `username`, when the form asked for it, must be the user's own: nobody signs in
    somebody else's name, even knowing their password. `request` (None outside a web
    request) reaches the authentication backends and the failed-login record.
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
    if authenticate(request, username=user.get_username(), password=password) is None:
        raise ValidationError({"password": _("Password: your password is not correct.")})
