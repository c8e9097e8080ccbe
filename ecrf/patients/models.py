from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ecrf.accounts.access import scope


class PatientQuerySet(models.QuerySet):
    def visible_to(self, user) -> PatientQuerySet:
        """The only way views read patients: the user's sites in the user's studies."""
        return self.filter(scope(user).site_filter("study_id", "site_id"))


@pghistory.track()
class Patient(models.Model):
    """A participant. The subject code is the only identifier stored (no names, no birth date)."""

    class Status(models.TextChoices):
        SCREENING = "screening", _("Screening")
        SCREEN_FAILED = "screen_failed", _("Screen failed")
        ENROLLED = "enrolled", _("Enrolled")
        COMPLETED = "completed", _("Completed")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    study = models.ForeignKey("studies.Study", on_delete=models.PROTECT, related_name="patients")
    site = models.ForeignKey("studies.Site", on_delete=models.PROTECT, related_name="patients")
    protocol_version = models.ForeignKey(
        "studies.ProtocolVersion",
        on_delete=models.PROTECT,
        related_name="patients",
        help_text="The protocol version the patient was screened under.",
    )
    subject_code = models.CharField(_("subject code"), max_length=16, editable=False)
    group = models.CharField(
        _("group"),
        max_length=16,
        blank=True,
        help_text=_("Observational group of the protocol (e.g. SSC, SLE, HD)."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.SCREENING
    )
    screening_date = models.DateField(_("screening date"))
    day0_date = models.DateField(
        _("day 0"),
        null=True,
        blank=True,
        help_text=_("Inclusion (randomisation) date; visit windows count from it."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["study", "subject_code"]
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        constraints = [
            models.UniqueConstraint(fields=["study", "subject_code"], name="unique_subject_code"),
            models.CheckConstraint(
                condition=models.Q(subject_code__regex=r"^[A-Z0-9]{2,8}-[0-9]{3,}$"),
                name="subject_code_format",
            ),
            models.CheckConstraint(
                condition=models.Q(day0_date__isnull=True)
                | models.Q(day0_date__gte=models.F("screening_date")),
                name="day0_not_before_screening",
            ),
        ]
        indexes = [models.Index(fields=["study", "site", "status"])]

    def __str__(self) -> str:
        return self.subject_code


class AllocationQuerySet(models.QuerySet):
    def visible_to(self, user) -> AllocationQuerySet:
        # The rows are visible with their patient; the arm itself is shown only to
        # unblinded users, which `can_see_allocation` decides at display time.
        return self.filter(scope(user).site_filter("patient__study_id", "patient__site_id"))


@pghistory.track()
class Allocation(models.Model):
    """A patient's treatment arm in a randomised study, kept apart from the patient so
    blinded screens never load it. Kit number is what blinded users see."""

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="allocation")
    arm = models.CharField(_("arm"), max_length=16)
    kit_number = models.CharField(_("kit number"), max_length=32)
    allocated_at = models.DateTimeField(auto_now_add=True)
    allocated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    objects = AllocationQuerySet.as_manager()

    class Meta:
        verbose_name = _("allocation")

    def __str__(self) -> str:
        return f"{self.patient} kit {self.kit_number}"
