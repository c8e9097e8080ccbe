"""Account events are recorded from Django's auth signals, each bound to its sender."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

from ecrf.audit.models import AuthEvent


def _client(request) -> dict:
    if request is None:
        return {"ip_address": None, "user_agent": ""}
    return {
        "ip_address": request.META.get("REMOTE_ADDR") or None,
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
    }


def on_login(sender, request, user, **kwargs) -> None:
    AuthEvent.objects.create(
        kind=AuthEvent.Kind.LOGIN, user=user, username=user.get_username(), **_client(request)
    )


def on_logout(sender, request, user, **kwargs) -> None:
    if user is None:  # logging out of an expired session
        return
    AuthEvent.objects.create(
        kind=AuthEvent.Kind.LOGOUT, user=user, username=user.get_username(), **_client(request)
    )


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    if credentials.get("two_factor"):  # a wrong second factor: its service records it
        return
    username = str(credentials.get("username", ""))[:150]
    user = get_user_model().objects.filter(username=username).first()
    AuthEvent.objects.create(
        kind=AuthEvent.Kind.LOGIN_FAILED, user=user, username=username, **_client(request)
    )


def connect() -> None:
    user_model = get_user_model()
    user_logged_in.connect(on_login, sender=user_model, dispatch_uid="audit-login")
    user_logged_out.connect(on_logout, sender=user_model, dispatch_uid="audit-logout")
    # user_login_failed's sender is a module-name string, which signals compare by
    # identity; it is sent only by authenticate(), so no sender filter is needed.
    user_login_failed.connect(on_login_failed, dispatch_uid="audit-login-failed")
