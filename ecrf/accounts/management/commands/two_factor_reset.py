"""Reset a person's two-factor login after a lost phone: their authenticator app and backup
codes go, the reset is recorded with who and why, and they enrol again at their next login."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from ecrf.accounts.two_factor import two_factor_reset


class Command(BaseCommand):
    help = "Reset a person's two-factor devices (lost phone), as an administrator, with a reason."

    def add_arguments(self, parser):
        parser.add_argument("username", help="whose devices are reset")
        parser.add_argument("--by", required=True, help="the administrator's username")
        parser.add_argument("--reason", required=True, help="why (recorded in the audit trail)")

    def handle(self, *args, username, by, reason, **options):
        users = get_user_model().objects
        try:
            user, admin = users.get(username=username), users.get(username=by)
        except users.model.DoesNotExist as missing:
            raise CommandError(f"No such user: {missing}") from None
        try:
            two_factor_reset(user=user, by=admin, reason=reason)
        except (ValidationError, PermissionDenied) as refused:
            messages = getattr(refused, "messages", None) or [str(refused)]
            raise CommandError(" ".join(str(m) for m in messages)) from None
        self.stdout.write(f"Two-factor login of {username} reset; they enrol again at next login.")
