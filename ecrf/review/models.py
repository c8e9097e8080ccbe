"""The review's own records: today the marks of source data verification."""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrf.accounts.access import scope
from ecrf.patients.models import FormIndexEntry, Patient


class SdvMarkQuerySet(models.QuerySet):
    def visible_to(self, user) -> SdvMarkQuerySet:
        return self.filter(scope(user).site_filter("patient__study_id", "patient__site_id"))


@pghistory.track()
class SdvMark(models.Model):
    """One step of a form instance's source data verification, never changed or deleted.

    A monitor or data manager verifies a field, or the whole form (`field` ""), of one
    version of the instance; a change to the data resets what it changed (kind "reset",
    written in the change's transaction and audit context, by whoever changed it). Read
    in order, the marks say which fields of the current version are verified
    (`ecrf.review.sdv.verified_fields`); the form index keeps the outcome for the screens
    (`review_state`, `review_version`).
    """

    class Kind(models.TextChoices):
        VERIFY = "verify", _("verified")
        RESET = "reset", _("reset by a change")

    entry = models.ForeignKey(
        FormIndexEntry, on_delete=models.PROTECT, related_name="sdv_marks", verbose_name=_("form")
    )
    # The entry's patient, so that the marks are in the patient's audit trail and scoped.
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    field = models.CharField(
        _("field"),
        max_length=64,
        blank=True,
        help_text="The field verified or reset; '' for the whole form.",
    )
    version = models.PositiveIntegerField(help_text="The instance's version the mark applies to.")
    kind = models.CharField(_("SDV"), max_length=8, choices=Kind.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who verified; for a reset, who changed the data (None: no user).",
    )
    at = models.DateTimeField(default=timezone.now)

    objects = SdvMarkQuerySet.as_manager()

    class Meta:
        ordering = ["entry_id", "pk"]
        verbose_name = _("SDV mark")
        verbose_name_plural = _("SDV marks")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["verify", "reset"]), name="sdv_mark_kind_choice"
            ),
            # A verification is somebody's act; a reset may come from a system write.
            models.CheckConstraint(
                condition=~models.Q(kind="verify") | models.Q(by__isnull=False),
                name="sdv_mark_verify_has_by",
            ),
        ]

    def __str__(self) -> str:
        what = self.field or "form"
        return f"{self.entry.form_code} #{self.entry.object_id} {what} v{self.version} {self.kind}"
