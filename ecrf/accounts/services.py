"""A person's own account settings (their roles are memberships, granted by administrators)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from ecrf.accounts.models import Language, User
from ecrf.audit.context import audited


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
