"""The audit row of every export: who exported what, when, blinded or not."""

from __future__ import annotations

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


@pghistory.track()
class ExportRecord(models.Model):
    """One export run, written in the export's transaction with the manifest's checksum."""

    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(_("exported at"))
    study = models.ForeignKey("studies.Study", on_delete=models.PROTECT, related_name="+")
    formats = models.JSONField(_("formats"), default=list)
    # Site and form codes asked for; empty: every site, every form.
    sites = models.JSONField(_("sites"), default=list, blank=True)
    forms = models.JSONField(_("forms"), default=list, blank=True)
    as_of = models.DateTimeField(_("cut-off"), null=True, blank=True)
    blinded = models.BooleanField(_("blinded"), default=True)
    manifest_sha256 = models.CharField(_("manifest checksum"), max_length=64)
    # [{"name": ..., "rows": ..., "sha256": ...}] as in the manifest.
    files = models.JSONField(_("files"), default=list)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("data export")
        verbose_name_plural = _("data exports")

    def __str__(self) -> str:
        return (
            f"{self.study_id} {self.at:%Y-%m-%d %H:%M} {'blinded' if self.blinded else 'UNBLINDED'}"
        )


# Progress columns change every few hundred rows: tracking them would write an audit event
# each time for nothing anyone reviews. The status, the file and its checksum are tracked.
@pghistory.track(exclude=["written", "total"])
class ExportJob(models.Model):
    """An export asked for on the screen: queued, written by a Celery task into a zip kept
    in the exports storage until it expires. The `ExportRecord` it produced is the audit
    row of the export itself; this row is the request, its progress and its file."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Ready")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")

    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    study = models.ForeignKey("studies.Study", on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(_("requested at"))
    # What was asked for, as export_prepare takes it (codes; empty: all).
    formats = models.JSONField(_("formats"), default=list)
    sites = models.JSONField(_("sites"), default=list, blank=True)
    forms = models.JSONField(_("forms"), default=list, blank=True)
    as_of = models.DateTimeField(_("cut-off"), null=True, blank=True)
    audit_from = models.DateTimeField(_("audit trail from"), null=True, blank=True)
    audit_to = models.DateTimeField(_("audit trail until"), null=True, blank=True)
    unblinded = models.BooleanField(_("unblinded"), default=False)
    initials = models.BooleanField(_("with initials"), default=False)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    written = models.BigIntegerField(_("rows written"), default=0)
    total = models.BigIntegerField(_("rows in all"), default=0)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # The zip's name in the exports storage ("" until written, and after it expired).
    file_name = models.CharField(_("file"), max_length=255, blank=True)
    size = models.BigIntegerField(_("size in bytes"), null=True, blank=True)
    sha256 = models.CharField(_("zip checksum"), max_length=64, blank=True)
    record = models.OneToOneField(
        ExportRecord, on_delete=models.PROTECT, null=True, blank=True, related_name="job"
    )
    error = models.TextField(_("error"), blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("deleted at"), null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        verbose_name = _("export job")
        verbose_name_plural = _("export jobs")
        indexes = [models.Index(fields=["status", "expires_at"], name="export_job_expiry")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "done", "failed", "expired"]),
                name="export_job_status_known",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="done")
                | (models.Q(record__isnull=False) & ~models.Q(file_name="")),
                name="export_job_done_has_file",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study_id} #{self.pk} {self.status} {self.blinding}"

    @property
    def blinding(self) -> str:
        return "UNBLINDED" if self.unblinded else "BLINDED"

    @property
    def percent(self) -> int:
        if self.status in (self.Status.DONE, self.Status.EXPIRED):
            return 100
        if not self.total:
            return 0
        return min(100, self.written * 100 // self.total)


@pghistory.track()
class ExportDownload(models.Model):
    """One download of an export's zip: who, when, which job, blinded or not, the checksum
    of the file handed out. Written before the file is streamed; never changed."""

    job = models.ForeignKey(ExportJob, on_delete=models.PROTECT, related_name="downloads")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(_("downloaded at"))
    blinded = models.BooleanField(_("blinded"))
    sha256 = models.CharField(_("zip checksum"), max_length=64)

    # An audit record (ecrf.audit.triggers): the application's database role may only
    # insert and read it.
    audit_record = True

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("export download")
        verbose_name_plural = _("export downloads")
        triggers = [
            pgtrigger.Protect(name="export_download_never_changed", operation=pgtrigger.Update),
            pgtrigger.Protect(name="export_download_never_deleted", operation=pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} {self.by_id} {self.at:%Y-%m-%d %H:%M}"
