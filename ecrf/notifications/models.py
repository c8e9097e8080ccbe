from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class OutboundEmail(models.Model):
    """One email to send, recorded before it is sent.

    The row is the record of what was sent and the guard against sending twice: the
    task claims it with a conditional UPDATE (pending → sending), so a second run of
    the task, or a second worker, finds nothing to claim. `dedupe_key` makes queuing
    the same notification twice a no-op.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        # Withdrawn before a worker claimed it (a reminder whose visit took place meanwhile).
        CANCELLED = "cancelled", _("Cancelled")

    dedupe_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=50)
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("outbound email")
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject} ({self.status})"
