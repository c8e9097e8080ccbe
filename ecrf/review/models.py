"""The review's own records: the marks of source data verification, the investigators'
electronic signatures."""

from __future__ import annotations

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrf.accounts.access import scope
from ecrf.patients.models import FormIndexEntry, Patient, Visit


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


class SignatureQuerySet(models.QuerySet):
    def visible_to(self, user) -> SignatureQuerySet:
        return self.filter(scope(user).site_filter("patient__study_id", "patient__site_id"))

    def valid(self) -> SignatureQuerySet:
        """The signatures that hold: not voided by a change to the data they cover."""
        return self.filter(voided_at__isnull=True)


@pghistory.track()
class Signature(models.Model):
    """An investigator's electronic signature of a visit, or of a whole casebook (21 CFR
    11.50, 11.70): who, when, what it means, and a SHA-256 digest of exactly the data it
    covers (`ecrf.review.signatures.canonical_payload`).

    Never transferred nor edited: a change to the signed data voids it, once, recording
    when, by whom and which change (`signatures_void`); signing again is a new signature.
    The database refuses any other update and any delete.
    """

    class Meaning(models.TextChoices):
        VISIT = "visit", _("I attest that the data of this visit are accurate and complete.")
        CASEBOOK = (
            "casebook",
            _("I attest that the data of this casebook are accurate and complete."),
        )

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    visit = models.ForeignKey(
        Visit,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The visit signed; None for the whole casebook.",
    )
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(_("signed at"), default=timezone.now)
    meaning = models.CharField(_("meaning"), max_length=8, choices=Meaning.choices)
    attestation = models.TextField(
        _("attestation"), help_text="The meaning's sentence, as the signer read it."
    )
    printed_name = models.CharField(
        _("printed name"), max_length=300, help_text="The signer's name, as the page showed it."
    )
    digest = models.CharField(
        _("digest"), max_length=64, help_text="SHA-256 (hex) of the canonical payload signed."
    )
    scope = models.JSONField(
        help_text="What the signature covers: the visits and the form instances (code, id, "
        "version) of the canonical payload."
    )
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who changed the signed data (None: no user).",
    )
    void_reason = models.CharField(
        _("reason voided"),
        max_length=300,
        blank=True,
        help_text='The change that voided it: "a change to mRSS M3".',
    )

    objects = SignatureQuerySet.as_manager()

    class Meta:
        ordering = ["patient", "signed_at", "pk"]
        verbose_name = _("signature")
        verbose_name_plural = _("signatures")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(meaning__in=["visit", "casebook"]),
                name="signature_meaning_choice",
            ),
            models.CheckConstraint(
                condition=models.Q(meaning="visit", visit__isnull=False)
                | models.Q(meaning="casebook", visit__isnull=True),
                name="signature_meaning_matches_target",
            ),
            models.CheckConstraint(
                condition=models.Q(digest__regex=r"^[0-9a-f]{64}$"), name="signature_digest_sha256"
            ),
            models.CheckConstraint(
                condition=~models.Q(printed_name="") & ~models.Q(attestation=""),
                name="signature_has_name_and_attestation",
            ),
            # Valid, or voided with when and why (who may be no user: a system write).
            models.CheckConstraint(
                condition=models.Q(voided_at__isnull=True, voided_by__isnull=True, void_reason="")
                | (models.Q(voided_at__isnull=False) & ~models.Q(void_reason="")),
                name="signature_voided_with_when_why",
            ),
        ]
        indexes = [
            models.Index(
                fields=["patient"],
                condition=models.Q(voided_at__isnull=True),
                name="signatures_valid",
            ),
        ]
        # Never deleted nor edited, whatever the code path: voiding (when, who, why, once)
        # is the only change the database lets through.
        triggers = [
            pgtrigger.Protect(name="signature_never_deleted", operation=pgtrigger.Delete),
            pgtrigger.Protect(
                name="signature_fixed",
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange(exclude=["voided_at", "voided_by", "void_reason"]),
            ),
            pgtrigger.Protect(
                name="signature_voided_once",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__voided_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        what = str(self.visit) if self.visit_id else f"{self.patient} casebook"
        return f"{what} signed by {self.printed_name}"

    @property
    def is_valid(self) -> bool:
        return self.voided_at is None
