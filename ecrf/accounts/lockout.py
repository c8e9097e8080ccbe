"""Account lockout (21 CFR 11.300(d)): too many wrong passwords lock the account for a while.

django-axes counts the failures of `authenticate()` per username (settings: AXES_*), from
the login page and from the password re-entries (`ecrf.accounts.reauth`) alike, and
refuses a locked account before its password is checked. This module adds what the
trial needs around it: the lockout written to the audit trail and emailed to the study
administrators, the page that tells the person when to try again, and the list of locked
accounts that an administrator may unlock (`account_unlock`, with a reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from axes import signals as axes_signals
from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db.models import Max, Sum
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ecrf.accounts.models import Membership, User
from ecrf.accounts.permissions import Action, roles_allowed
from ecrf.audit import signals as audit_signals
from ecrf.audit.models import AuthEvent
from ecrf.audit.signals import auth_event_record
from ecrf.notifications.services import email_queue

EMAIL_KIND = "account_lockout"


def _failures(usernames=None):
    """Failures per username within the cool-off, and the last of them (one query)."""
    threshold = timezone.now() - get_cool_off()
    attempts = AccessAttempt.objects.filter(attempt_time__gte=threshold)
    if usernames is not None:
        attempts = attempts.filter(username__in=list(usernames))
    return (
        attempts.order_by()
        .values("username")
        .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
    )


def locked_until(username: str) -> datetime | None:
    """When the account's lockout ends by itself; None when it is not locked.

    The same count as axes' (its attempts of this username within the cool-off), so the
    page and the unlock screen say what the backend does.
    """
    rows = list(_failures([username]))
    return rows[0]["last"] + get_cool_off() if rows else None


@dataclass(frozen=True)
class LockedAccount:
    user: User
    until: datetime


def locked_accounts_for(viewer) -> list[LockedAccount]:
    """The locked accounts the viewer may unlock: members of the studies they administer
    (every locked account for a superuser). Two queries."""
    rows = {row["username"]: row["last"] for row in _failures()}
    users = User.objects.filter(username__in=list(rows))
    if not viewer.is_superuser:
        administered = Membership.objects.held_by(viewer.pk).filter(
            role__in=roles_allowed(Action.UNLOCK_ACCOUNT), site__isnull=True
        )
        users = users.filter(
            memberships__active=True, memberships__study__in=administered.values("study_id")
        ).distinct()
    cool_off = get_cool_off()
    return [
        LockedAccount(user=user, until=rows[user.username] + cool_off)
        for user in users.order_by("username")
    ]


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked account gets instead of the login (or re-entry) page (axes'
    AXES_LOCKOUT_CALLABLE). It says until when, and whom to ask; it names nobody, since
    the username typed may be anyone's."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    until = locked_until(username) if username else None
    context = {
        "until": timezone.localtime(until) if until else None,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cool_off_minutes": int(get_cool_off().total_seconds() // 60),
        "signed_out": getattr(request, "ecrf_signed_out", False),
    }
    return render(request, "registration/locked_out.html", context, status=429)


def on_user_locked_out(sender, request, username, ip_address=None, **kwargs) -> None:
    """The failure that reached the limit: recorded, and the administrators told.

    axes sends this signal again for every try refused while the account stays locked;
    only the one that locked it has counted a failure (`axes_failures_since_start`).
    """
    if getattr(request, "axes_failures_since_start", None) is None:
        return
    event = auth_event_record(kind=AuthEvent.Kind.LOCKOUT, username=username, request=request)
    if event.user_id is not None:
        _notify_administrators(event)


def administrators_of(user) -> list[User]:
    """Who is told of the user's lockout: those who may unlock it, the active administrators
    of the studies the user belongs to; the superusers when nobody administers them (an
    account of no study)."""
    studies = Membership.objects.held_by(user.pk).values("study_id")
    admins = User.objects.filter(
        is_active=True,
        memberships__active=True,
        memberships__role__in=roles_allowed(Action.UNLOCK_ACCOUNT),
        memberships__site__isnull=True,
        memberships__study__in=studies,
    )
    people = list(admins.exclude(email="").distinct().order_by("username"))
    if not people:
        people = list(
            User.objects.filter(is_active=True, is_superuser=True)
            .exclude(email="")
            .order_by("username")
        )
    return people


def _notify_administrators(event: AuthEvent) -> None:
    user = User.objects.get(pk=event.user_id)
    studies = sorted(set(Membership.objects.held_by(user.pk).values_list("study__code", flat=True)))
    until = timezone.localtime(event.at + get_cool_off())
    url = settings.SITE_URL.rstrip("/") + reverse("locked_accounts")
    for admin in administrators_of(user):
        with translation.override(admin.language):
            subject = _("[eCRF] Account locked: %(username)s") % {"username": user.username}
            lines = [
                _(
                    "The account of %(name)s (%(username)s) was locked at %(at)s after "
                    "%(limit)d wrong passwords in a row (from %(address)s)."
                )
                % {
                    "name": user.get_full_name() or user.username,
                    "username": user.username,
                    "at": f"{timezone.localtime(event.at):%Y-%m-%d %H:%M %Z}",
                    "limit": settings.AXES_FAILURE_LIMIT,
                    "address": event.ip_address or _("no network address"),
                },
                _("Studies: %(studies)s") % {"studies": ", ".join(studies) or "-"},
                _("It unlocks by itself at %(until)s.") % {"until": f"{until:%H:%M %Z}"},
                "",
                _(
                    "If the person asks to be let in sooner and you have made sure it is "
                    "them, unlock the account with a reason: %(url)s"
                )
                % {"url": url},
                _(
                    "If they did not try to sign in, someone else may be guessing their "
                    "password: ask them to change it."
                ),
            ]
        email_queue(
            dedupe_key=f"account-lockout:{event.pk}:{admin.pk}",
            kind=EMAIL_KIND,
            recipients=[admin.email],
            subject=subject,
            body="\n".join(lines) + "\n",
        )


def connect() -> None:
    # The audit trail's receiver of failed logins before axes' (the admin's autodiscovery
    # imported axes first): the trail records the failure, then the lockout it caused.
    user_login_failed.disconnect(axes_signals.handle_user_login_failed)
    audit_signals.connect()  # a no-op when already connected (dispatch_uid)
    user_login_failed.connect(axes_signals.handle_user_login_failed)
    # axes sends it with the string "axes" as sender, which signals compare by identity.
    axes_signals.user_locked_out.connect(on_user_locked_out, dispatch_uid="ecrf-account-lockout")


def attempts_reset(username: str) -> int:
    """Forget the account's failures (axes' own reset): the lockout ends now."""
    return axes_reset(username=username)
