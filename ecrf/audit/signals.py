"""Account events are recorded from Django's auth signals and the user model's saves, each
bound to its sender.

A change of password is seen on the save that follows `set_password` (Django keeps the new
raw password on the instance until then; a rehash on login is not a change and is not
recorded), a change of `is_active` by comparing with the stored row. Who made the change
is the audit context's user (the admin's, or the request's through pghistory's
middleware): the owner changed their password, anybody else (or nobody, the reset link)
reset it.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save, pre_save

from ecrf.audit.context import audit_reason, audit_user_id
from ecrf.audit.models import AuthEvent


def client_of(request) -> dict:
    """Where an account event came from: the address and browser of its request."""
    if request is None:
        return {"ip_address": None, "user_agent": ""}
    return {
        "ip_address": request.META.get("REMOTE_ADDR") or None,
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
    }


def on_login(sender, request, user, **kwargs) -> None:
    AuthEvent.objects.create(
        kind=AuthEvent.Kind.LOGIN, user=user, username=user.get_username(), **client_of(request)
    )


def on_logout(sender, request, user, **kwargs) -> None:
    if user is None:  # logging out of an expired session
        return
    AuthEvent.objects.create(
        kind=AuthEvent.Kind.LOGOUT, user=user, username=user.get_username(), **client_of(request)
    )


# Set on the request that `ecrf.accounts.reauth.reauthenticate` hands to authenticate():
# its failure is a wrong password re-entered by a signed-in person, not a failed login.
REAUTHENTICATION = "ecrf_reauthentication"


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    if credentials.get("two_factor"):  # a wrong second factor: its service records it
        return
    username = str(credentials.get("username", ""))[:150]
    user = get_user_model().objects.filter(username=username).first()
    reentry = getattr(request, REAUTHENTICATION, False)
    AuthEvent.objects.create(
        kind=AuthEvent.Kind.REAUTH_FAILED if reentry else AuthEvent.Kind.LOGIN_FAILED,
        user=user,
        username=username,
        **client_of(request),
    )


def auth_event_record(*, kind: str, username: str, request=None) -> AuthEvent:
    """Record an account event that no Django auth signal carries (a re-entry, a lockout)."""
    user = get_user_model().objects.filter(username=username).first()
    return AuthEvent.objects.create(kind=kind, user=user, username=username, **client_of(request))


def on_user_pre_save(sender, instance, update_fields=None, raw=False, **kwargs) -> None:
    """Note what the save changes of the account's access, for `on_user_saved`."""
    instance._account_events = []
    if raw or instance.pk is None:  # fixtures; a new account (its creation is in pghistory)
        return
    fields = set(update_fields) if update_fields is not None else None
    by = audit_user_id()
    if getattr(instance, "_password", None) is not None and (
        fields is None or "password" in fields
    ):
        own = by == instance.pk
        kind = AuthEvent.Kind.PASSWORD_CHANGED if own else AuthEvent.Kind.PASSWORD_RESET
        instance._account_events.append(kind)
    if fields is None or "is_active" in fields:
        was = sender.objects.filter(pk=instance.pk).values_list("is_active", flat=True).first()
        if was is not None and was != instance.is_active:
            kind = AuthEvent.Kind.ACTIVATED if instance.is_active else AuthEvent.Kind.DEACTIVATED
            instance._account_events.append(kind)


def on_user_saved(sender, instance, created=False, raw=False, **kwargs) -> None:
    kinds = getattr(instance, "_account_events", ())
    if not kinds:
        return
    by = audit_user_id()
    AuthEvent.objects.bulk_create(
        AuthEvent(
            kind=kind,
            user_id=instance.pk,
            username=instance.get_username(),
            by_id=None if by == instance.pk else by,
            reason=audit_reason()[:300],
            ip_address=None,
        )
        for kind in kinds
    )
    instance._account_events = []


def connect() -> None:
    user_model = get_user_model()
    user_logged_in.connect(on_login, sender=user_model, dispatch_uid="audit-login")
    user_logged_out.connect(on_logout, sender=user_model, dispatch_uid="audit-logout")
    # user_login_failed's sender is a module-name string, which signals compare by
    # identity; it is sent only by authenticate(), so no sender filter is needed.
    user_login_failed.connect(on_login_failed, dispatch_uid="audit-login-failed")
    pre_save.connect(on_user_pre_save, sender=user_model, dispatch_uid="audit-account-pre-save")
    post_save.connect(on_user_saved, sender=user_model, dispatch_uid="audit-account-saved")
