"""Accounts: a person's own settings, and an administrator's unlock of a locked-out account.

Roles are memberships, granted by administrators."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from ecrf.accounts.lockout import attempts_reset, locked_until
from ecrf.accounts.models import Language, Membership, User
from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audited
from ecrf.audit.models import AuthEvent


def user_language_set(*, user: User, language: str) -> User:
    """The language of the user's emails and screens; only the user sets their own."""
    if language not in Language.values:
        raise ValidationError({"language": _("Choose French or English.")}, code="invalid_language")
    with transaction.atomic(), audited(by=user, reason="language changed by the user"):
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.language != language:
            locked.language = language
            locked.save(update_fields=["language"])
    user.language = language
    return user


def account_unlock(*, user: User, by, reason: str) -> int:
    """Let a locked-out person in again before the lockout ends by itself; returns the
    failed attempts forgotten.

    An administrator of one of the user's studies may (a superuser for any account), never
    for their own account, and only with a reason: the unlock is an audited account event.
    """
    if not (by.is_active and by.is_superuser):
        study_ids = sorted(
            set(Membership.objects.held_by(user.pk).values_list("study_id", flat=True))
        )
        refusal = PermissionDenied(
            _("Only a superuser may unlock %(username)s: the account belongs to no study.")
            % {"username": user.get_username()}
        )
        for study_id in study_ids:
            try:
                require(by, Action.UNLOCK_ACCOUNT, study=study_id, every_site=True)
            except PermissionDenied as exc:
                refusal = exc
            else:
                break
        else:
            raise refusal
    if by.pk == user.pk:
        raise PermissionDenied(
            _("You cannot unlock your own account: ask another administrator of your study.")
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(
            {
                "reason": _(
                    "Reason: say why the account is unlocked; it is kept in the audit trail."
                )
            },
            code="reason_required",
        )
    if locked_until(user.get_username()) is None:
        raise ValidationError(
            _("Account: %(username)s is not locked; there is nothing to unlock.")
            % {"username": user.get_username()},
            code="not_locked",
        )
    with transaction.atomic():
        forgotten = attempts_reset(user.get_username())
        AuthEvent.objects.create(
            kind=AuthEvent.Kind.UNLOCK,
            user=user,
            username=user.get_username(),
            by=by,
            reason=reason[:300],
        )
    return forgotten
