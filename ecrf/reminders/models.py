"""What the sites' staff are reminded of, one row per reminder and recipient.

A row's key (kind, object, occurrence, recipient) is unique: the sweep inserts with
ON CONFLICT DO NOTHING, so two sweeps, two workers or a retried task record a reminder
once, and the row holds the one outbound email that carries it.
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ecrf.patients.models import Patient


class Kind(models.TextChoices):
    WINDOW_OPENS = "window_opens", _("Visit window opens")
    BEFORE_TARGET = "before_target", _("Visit target day")
    WINDOW_CLOSES = "window_closes", _("Visit window closes")
    OVERDUE = "overdue", _("Visit overdue")
    PREGNANCY_TEST = "pregnancy_test", _("Pregnancy test before inclusion")
    SAE_DUE = "sae_due", _("SAE initial report due")
    SAE_OVERDUE = "sae_overdue", _("SAE initial report overdue")
    SUSAR_DUE = "susar_due", _("SUSAR report to the authorities due")
    SUSAR_OVERDUE = "susar_overdue", _("SUSAR report to the authorities overdue")
    QUERY = "query", _("Query waiting for the site's answer")


VISIT_KINDS = frozenset({Kind.WINDOW_OPENS, Kind.BEFORE_TARGET, Kind.WINDOW_CLOSES, Kind.OVERDUE})
# Safety reminders cannot be switched off and are never held for a digest.
SAFETY_KINDS = frozenset({Kind.SAE_DUE, Kind.SAE_OVERDUE, Kind.SUSAR_DUE, Kind.SUSAR_OVERDUE})


class Delivery(models.TextChoices):
    IMMEDIATE = "immediate", _("One email per reminder")
    DIGEST = "digest", _("One daily digest")


@pghistory.track()
class ReminderPreference(models.Model):
    """A user's choice for one study: how reminders arrive, and whether the non-safety
    ones come at all (the safety ones always do, each at once)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminder_preferences"
    )
    study = models.ForeignKey("studies.Study", on_delete=models.PROTECT, related_name="+")
    delivery = models.CharField(
        _("delivery"),
        max_length=10,
        choices=Delivery.choices,
        default=Delivery.IMMEDIATE,
        help_text=_("Visit reminders one by one, or together in one email at the sending hour."),
    )
    visit_reminders = models.BooleanField(
        _("visit and pregnancy test reminders"),
        default=True,
        help_text=_("SAE and SUSAR reminders are always sent: they cannot be switched off."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("reminder setting")
        verbose_name_plural = _("reminder settings")
        constraints = [
            models.UniqueConstraint(fields=["user", "study"], name="unique_reminder_preference")
        ]

    def __str__(self) -> str:
        return f"{self.user} – {self.study.code}: {self.get_delivery_display()}"


class ReminderQuerySet(models.QuerySet):
    def visible_to(self, user) -> ReminderQuerySet:
        """Reminders of the sites the user sees (patients.Patient's scoping)."""
        return self.filter(patient__in=Patient.objects.visible_to(user))


class Reminder(models.Model):
    class Status(models.TextChoices):
        DUE = "due", _("Due, not yet queued")
        QUEUED = "queued", _("Queued")  # its email's own status says sent or failed
        CANCELLED = "cancelled", _("Cancelled")
        SKIPPED = "skipped", _("Skipped")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    # The row the reminder is about: a visit, a patient (pregnancy test), an SAE report, an
    # adverse event (SUSAR) or a query, by kind.
    object_id = models.PositiveBigIntegerField()
    # Which one of the kind for that object: the days before (window, target), the n-th
    # overdue reminder, the n-th SAE overdue period, the query's days open.
    occurrence = models.PositiveIntegerField()
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="reminders",
        verbose_name=_("recipient"),
    )
    study = models.ForeignKey("studies.Study", on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey("studies.Site", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="reminders"
    )
    visit = models.ForeignKey(
        "patients.Visit", on_delete=models.PROTECT, null=True, blank=True, related_name="reminders"
    )
    due_on = models.DateField(_("due on"), help_text="The site's calendar day.")
    due_at = models.DateTimeField(_("due at"))
    delivery = models.CharField(max_length=10, choices=Delivery.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    note = models.CharField(_("note"), max_length=300, blank=True)
    email = models.ForeignKey(
        "notifications.OutboundEmail",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reminders",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ReminderQuerySet.as_manager()

    class Meta:
        ordering = ["-due_at", "pk"]
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "object_id", "occurrence", "recipient"], name="unique_reminder"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="queued") | models.Q(email__isnull=False),
                name="queued_reminder_has_email",
            ),
        ]
        indexes = [
            models.Index(fields=["study", "status", "due_at"]),
            models.Index(fields=["visit", "due_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.patient_id} → {self.recipient_id} ({self.status})"

    @property
    def delivery_status(self) -> str:
        """Where the reminder stands for a reader, as the log's status filter says: sent,
        pending (not yet queued, or its email not yet sent), failed, cancelled (itself, or
        its email withdrawn) or skipped. A queued reminder stands where its email does."""
        if self.status == self.Status.QUEUED and self.email is not None:
            status = self.email.status
            if status in ("sent", "failed", "cancelled"):
                return status
            return "pending"  # pending or sending
        if self.status in (self.Status.CANCELLED, self.Status.SKIPPED):
            return self.status
        return "pending"
