from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuthEvent(models.Model):
    """Account events (21 CFR 11.10(d)): who logged in or out, and failed attempts.

    Failed attempts keep the username as typed, which may match no account. Two-factor
    login is recorded too: enrolment, each code accepted or refused, and an administrator's
    reset of a lost device (`by`, with the `reason`).
    """

    class Kind(models.TextChoices):
        LOGIN = "login", _("Login")
        LOGOUT = "logout", _("Logout")
        LOGIN_FAILED = "login_failed", _("Failed login")
        OTP_ENROLLED = "otp_enrolled", _("Two-factor device enrolled")
        OTP_VERIFIED = "otp_verified", _("Two-factor code accepted")
        OTP_BACKUP_USED = "otp_backup_used", _("Two-factor backup code used")
        OTP_FAILED = "otp_failed", _("Wrong two-factor code")
        OTP_RESET = "otp_reset", _("Two-factor devices reset")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        related_name="+",
    )
    username = models.CharField(max_length=150)
    ip_address = models.GenericIPAddressField(null=True)
    user_agent = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Who acted on the account when it was not its owner (an administrator's reset), and why.
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("account event")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind} {self.username}"
