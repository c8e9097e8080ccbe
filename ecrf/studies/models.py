from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


@pghistory.track()
class Study(models.Model):
    class Design(models.TextChoices):
        INTERVENTIONAL = "interventional", _("Interventional")
        OBSERVATIONAL = "observational", _("Observational")

    code = models.CharField(
        _("registration number"), max_length=32, unique=True, help_text=_("e.g. NCT00479934")
    )
    acronym = models.CharField(_("short name"), max_length=64)
    title = models.CharField(_("title"), max_length=300)
    sponsor = models.CharField(_("sponsor"), max_length=200)
    design = models.CharField(_("design"), max_length=20, choices=Design.choices)
    # Set from the protocol file when the study is created; afterwards only the study
    # unblinding service (`ecrf.review.study_unblinding`) turns it off, never a form.
    blinded = models.BooleanField(
        _("blinded"),
        default=False,
        editable=False,
        help_text=_("Hide the allocation from blinded users."),
    )
    target_enrolment = models.PositiveIntegerField(_("target enrolment"), null=True, blank=True)
    sites = models.ManyToManyField("Site", through="StudySite", related_name="studies")

    class Meta:
        ordering = ["code"]
        verbose_name = _("study")
        verbose_name_plural = _("studies")

    def __str__(self) -> str:
        return f"{self.code} {self.acronym}"

    @property
    def current_protocol(self) -> ProtocolVersion | None:
        return self.protocol_versions.order_by("-loaded_at").first()


@pghistory.track()
class StudyUnblinding(models.Model):
    """The unblinding of a whole study, once, after its database lock: who, when and why.

    Written by `ecrf.review.study_unblinding.study_unblind` with `Study.blinded` turned off
    in the same transaction; the row is the record the sponsor's notice points to.
    """

    study = models.OneToOneField(Study, on_delete=models.PROTECT, related_name="unblinding")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(_("reason"))
    at = models.DateTimeField(_("unblinded at"), auto_now_add=True)

    # An audit record (ecrf.audit.triggers): inserted and read, never changed, and the
    # application's database role holds only INSERT and SELECT on it.
    audit_record = True

    class Meta:
        verbose_name = _("study unblinding")
        verbose_name_plural = _("study unblindings")
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(reason=""), name="study_unblinding_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study.code} unblinded"


@pghistory.track()
class Site(models.Model):
    code = models.CharField(
        _("code"),
        max_length=8,
        unique=True,
        help_text=_("Short upper-case code used in subject codes, e.g. BXP."),
    )
    name = models.CharField(_("name"), max_length=300)
    city = models.CharField(_("city"), max_length=100)
    country = models.CharField(_("country"), max_length=2, default="FR")
    timezone = models.CharField(_("time zone"), max_length=64, default="Europe/Paris")

    class Meta:
        ordering = ["code"]
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(code__regex=r"^[A-Z0-9]{2,8}$"), name="site_code_format"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} – {self.name} ({self.city})"


@pghistory.track()
class StudySite(models.Model):
    """A site's participation in a study; holds the subject number counter."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="study_sites")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="study_sites")
    active = models.BooleanField(_("recruiting"), default=True)
    last_subject_number = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["study", "site__code"]
        verbose_name = _("participating site")
        verbose_name_plural = _("participating sites")
        constraints = [
            models.UniqueConstraint(fields=["study", "site"], name="unique_study_site"),
        ]

    def __str__(self) -> str:
        return f"{self.study.code} @ {self.site.code}"


@pghistory.track()
class ProtocolVersion(models.Model):
    """One loaded version of a study's protocol file.

    Data keep the version they were entered under; an amendment adds a row.
    """

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="protocol_versions")
    version = models.CharField(_("version"), max_length=32)
    effective_date = models.DateField(_("effective date"))
    source_path = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64)
    definition = models.JSONField(help_text="The validated protocol, as loaded.")
    loaded_at = models.DateTimeField(auto_now_add=True)
    loaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["study", "loaded_at"]
        verbose_name = _("protocol version")
        constraints = [
            models.UniqueConstraint(fields=["study", "version"], name="unique_protocol_version"),
        ]

    def __str__(self) -> str:
        return f"{self.study.code} v{self.version}"

    @property
    def protocol(self):
        """The definition as a validated `Protocol` object (see studies.protocol)."""
        from ecrf.studies.protocol import Protocol

        cached = getattr(self, "_protocol", None)
        if cached is None:
            cached = self._protocol = Protocol.model_validate(self.definition)
        return cached
