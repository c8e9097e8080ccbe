"""The audit row of every export: who exported what, when, blinded or not."""

from __future__ import annotations

import pghistory
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
