"""The review's own records: the marks of source data verification, the queries, and the
investigators' electronic signatures."""

from __future__ import annotations

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrf.accounts.access import scope
from ecrf.patients.models import FormIndexEntry, Patient, Visit
from ecrf.review.states import QueryStatus


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


class QueryQuerySet(models.QuerySet):
    def visible_to(self, user) -> QueryQuerySet:
        return self.filter(scope(user).site_filter("patient__study_id", "patient__site_id"))

    def unresolved(self) -> QueryQuerySet:
        """The queries not closed: open, answered (waiting for the monitor) or reopened."""
        return self.exclude(status="closed")


@pghistory.track()
class Query(models.Model):
    """A discrepancy note on a field of a form, a whole form, or a visit.

    Raised by a monitor or a data manager (`origin` manual) or by the system's rules
    (`origin` auto, `rule` naming which: ecrf.review.auto_queries), answered by the site,
    closed by the reviewer (ecrf.review.states.QueryStatus has the moves). What was said
    is the thread of `QueryMessage`s, never edited nor deleted; this row holds only where
    the query is and its status, and the database refuses any other change.

    `visit` is the visit of the form (copied from the entry, so that one column counts a
    visit's queries), or the visit itself for a query without a form (a visit past its
    window with nothing entered).
    """

    class Origin(models.TextChoices):
        MANUAL = "manual", _("raised by a reviewer")
        AUTO = "auto", _("raised by the system")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="queries")
    entry = models.ForeignKey(
        FormIndexEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="queries",
        verbose_name=_("form"),
        help_text="The form instance queried (a CRF, an adverse event); None for a visit.",
    )
    visit = models.ForeignKey(
        "patients.Visit",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="queries",
        verbose_name=_("visit"),
    )
    field = models.CharField(
        _("field"), max_length=64, blank=True, help_text="The field queried; '' for the whole form."
    )
    status = models.CharField(
        _("status"), max_length=12, choices=QueryStatus.choices, default=QueryStatus.OPEN
    )
    origin = models.CharField(_("origin"), max_length=8, choices=Origin.choices)
    rule = models.CharField(
        _("rule"),
        max_length=32,
        blank=True,
        help_text="The automatic rule that raised it (ecrf.review.auto_queries); '' if manual.",
    )
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("raised by"),
        help_text="None: raised by the system.",
    )
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    objects = QueryQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-pk"]
        verbose_name = _("query")
        verbose_name_plural = _("queries")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "answered", "closed", "reopened"]),
                name="query_status_choice",
            ),
            models.CheckConstraint(
                condition=models.Q(entry__isnull=False) | models.Q(visit__isnull=False),
                name="query_on_a_form_or_a_visit",
            ),
            models.CheckConstraint(
                condition=models.Q(origin="manual", rule="", raised_by__isnull=False)
                | (models.Q(origin="auto") & ~models.Q(rule="")),
                name="query_manual_by_someone_auto_by_a_rule",
            ),
            models.CheckConstraint(
                condition=models.Q(status="closed", closed_at__isnull=False)
                | (~models.Q(status="closed") & models.Q(closed_at__isnull=True)),
                name="query_closed_with_when",
            ),
            # A rule raises its query once per target, however often the sweep runs.
            models.UniqueConstraint(
                fields=["rule", "entry", "visit", "field"],
                condition=models.Q(origin="auto"),
                nulls_distinct=False,
                name="one_auto_query_per_rule_and_target",
            ),
        ]
        indexes = [
            models.Index(
                fields=["patient"],
                condition=~models.Q(status="closed"),
                name="review_queries_unresolved",
            ),
        ]
        # Only the status moves (and the moment of closing, once): the database refuses
        # any other change, and every delete.
        triggers = [
            pgtrigger.Protect(name="query_never_deleted", operation=pgtrigger.Delete),
            pgtrigger.Protect(
                name="query_target_fixed",
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange(exclude=["status", "closed_at"]),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk}"

    @property
    def is_closed(self) -> bool:
        return self.status == "closed"


class QueryMessageQuerySet(models.QuerySet):
    def visible_to(self, user) -> QueryMessageQuerySet:
        return self.filter(scope(user).site_filter("patient__study_id", "patient__site_id"))


@pghistory.track()
class QueryMessage(models.Model):
    """One message of a query's thread: append-only (the database refuses an edit or a
    delete). A correction names the version of the form it produced, and that version's
    audit event carries the query as its reason: the link goes both ways."""

    class Kind(models.TextChoices):
        RAISE = "raise", _("raised")
        ANSWER = "answer", _("answered")
        CORRECTION = "correction", _("corrected the data")
        CLOSE = "close", _("closed")
        REOPEN = "reopen", _("reopened")

    query = models.ForeignKey(Query, on_delete=models.PROTECT, related_name="messages")
    # The query's patient, so that the thread is in the patient's audit trail, and scoped.
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    text = models.TextField(_("message"))
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="None: the system.",
    )
    at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(
        null=True, blank=True, help_text="For a correction: the form's version it produced."
    )

    objects = QueryMessageQuerySet.as_manager()

    # An audit record (ecrf.audit.triggers): the application's database role may only
    # insert and read it.
    audit_record = True

    class Meta:
        ordering = ["query_id", "pk"]
        verbose_name = _("query message")
        verbose_name_plural = _("query messages")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["raise", "answer", "correction", "close", "reopen"]),
                name="query_message_kind_choice",
            ),
            models.CheckConstraint(condition=~models.Q(text=""), name="query_message_has_text"),
            models.CheckConstraint(
                condition=models.Q(kind="correction", version__isnull=False)
                | (~models.Q(kind="correction") & models.Q(version__isnull=True)),
                name="query_correction_names_its_version",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="raise") | models.Q(by__isnull=False),
                name="query_message_by_someone",
            ),
        ]
        triggers = [
            pgtrigger.Protect(name="query_message_never_deleted", operation=pgtrigger.Delete),
            pgtrigger.Protect(name="query_message_never_edited", operation=pgtrigger.Update),
        ]

    def __str__(self) -> str:
        return f"#{self.query_id} {self.kind}"


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

    # An audit record (ecrf.audit.triggers): the application's database role may insert and
    # read it, and update only the voiding fields (the triggers below say when).
    audit_record = True
    audit_updatable = ("voided_at", "voided_by", "void_reason")

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
