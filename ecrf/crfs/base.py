"""The small base every case report form shares.

A form instance belongs to a patient and (except per-patient logs) to one visit. Its
status grows with review later (SDV, lock); `version` is the optimistic lock: a save
names the version it started from and is refused when somebody saved in between.
Derived values (scores, compliance) are computed in `compute_derived()` from
`ecrf.scoring`, never typed in.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ecrf.accounts.access import scope


class CrfQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(scope(user).site_filter("patient__study_id", "patient__site_id"))


class CrfBase(models.Model):
    class Status(models.TextChoices):
        NOT_STARTED = "not_started", _("Not started")
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETE = "complete", _("Complete")

    # The protocol form code this model implements (crf-spec.md), e.g. "mrss".
    FORM_CODE: ClassVar[str] = ""
    # Fields that must be filled for the form to be complete (others are optional).
    REQUIRED_FIELDS: ClassVar[tuple[str, ...]] = ()
    # Dates of past events the form records (medical history); they may precede consent.
    HISTORY_DATES: ClassVar[tuple[str, ...]] = ()

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    visit = models.ForeignKey(
        "patients.Visit", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.NOT_STARTED
    )
    protocol_version = models.ForeignKey(
        "studies.ProtocolVersion", on_delete=models.PROTECT, related_name="+"
    )
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    entered_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)
    confirmed_warnings = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Soft warnings the user confirmed when saving (plausible but unusual values).",
    )

    objects = CrfQuerySet.as_manager()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        # Unsaved probes (live preview) may have neither yet.
        where = self.visit if self.visit_id else self.patient if self.patient_id else ""
        return f"{self._meta.verbose_name} {where}{self.name_detail()}"

    def save(self, *args, **kwargs):
        # Derived values are part of the row's integrity, not a business rule: they are
        # recomputed on every save so a stored score can never disagree with its answers.
        self.compute_derived()
        super().save(*args, **kwargs)

    def unique_error_message(self, model_class, unique_check):
        # Django's "<Model> with this Visit already exists." names columns; say what to do.
        if tuple(unique_check) == ("visit",):
            from django.core.exceptions import ValidationError
            from django.utils.translation import gettext

            return ValidationError(
                gettext("This visit already has its %(form)s form: open it to change it.")
                % {"form": self._meta.verbose_name},
                code="unique_together",
            )
        return super().unique_error_message(model_class, unique_check)

    def name_detail(self) -> str:
        """What tells this instance from the visit's others in its name (a kit, a condition)."""
        return ""

    def missing_fields(self) -> list[str]:
        """Required fields still empty; the form is complete when there are none."""
        return [name for name in self.REQUIRED_FIELDS if getattr(self, name) in (None, "")]

    def compute_derived(self) -> None:
        """Fill derived fields from the raw answers; forms without any keep this no-op."""

    def context_problems(self) -> dict[str, str]:
        """Answers that disagree with the patient's other data (field name -> message).

        The rules a form cannot check alone, because a new instance has no patient yet (the
        patient's allocated kit, their group's culture conditions); the save calls it.
        """
        return {}

    @classmethod
    def visit_lacks(cls, visit) -> list[str]:
        """What this form still lacks at the visit for the visit to be complete ([]: nothing)."""
        if cls.objects.filter(visit=visit, status=cls.Status.COMPLETE).exists():
            return []
        return [str(cls._meta.verbose_name)]
