from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuthEvent(models.Model):
    """Account events (21 CFR 11.10(d)): who logged in or out, failed attempts, and the
    changes to an account's access: its password changed or reset, the account activated
    or deactivated (`by`: who did it, when it was not the account's owner).

    Failed attempts keep the username as typed, which may match no account. A password
    re-entry (signature, unblinding, SAE) is recorded apart from a login; a lockout and an
    administrator's unlock (`by`, with the `reason`) too. No password, nor its hash, is
    ever kept here (nor in the user's pghistory events: the field is excluded from
    tracking).
    Two-factor login is recorded too: enrolment, each code accepted or refused, and an
    administrator's reset of a lost device (`by`, with the `reason`).
    """

    class Kind(models.TextChoices):
        LOGIN = "login", _("Login")
        LOGOUT = "logout", _("Logout")
        LOGIN_FAILED = "login_failed", _("Failed login")
        REAUTH = "reauth", _("Password re-entered")
        REAUTH_FAILED = "reauth_failed", _("Wrong password re-entered")
        LOCKOUT = "lockout", _("Account locked")
        UNLOCK = "unlock", _("Account unlocked")
        PASSWORD_CHANGED = "password_changed", _("Password changed by its owner")
        PASSWORD_RESET = "password_reset", _("Password reset")
        ACTIVATED = "activated", _("Account activated")
        DEACTIVATED = "deactivated", _("Account deactivated")
        OTP_ENROLLED = "otp_enrolled", _("Two-factor device enrolled")
        OTP_VERIFIED = "otp_verified", _("Two-factor code accepted")
        OTP_BACKUP_USED = "otp_backup_used", _("Two-factor backup code used")
        OTP_FAILED = "otp_failed", _("Wrong two-factor code")
        OTP_RESET = "otp_reset", _("Two-factor devices reset")
        OTP_BACKUP_NEW = "otp_backup_new", _("New two-factor backup codes")
        API_TOKEN_CREATED = "token_created", _("API token created")
        API_TOKEN_REVOKED = "token_revoked", _("API token revoked")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        related_name="+",
    )
    username = models.CharField(max_length=150)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Who acted on the account (empty: its owner, or nobody signed in)."),
    )
    ip_address = models.GenericIPAddressField(null=True)
    user_agent = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Why, when someone acted on the account (an administrator's unlock).
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("account event")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind} {self.username}"
