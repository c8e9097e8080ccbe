"""Adverse events, SAE reports and safety-lab prompts.

An adverse event belongs to the patient, not to a visit: the log is open from consent
to the end of study. A serious one starts a reporting clock (`SaeReport.due_at`) from
the moment the site became aware of its seriousness (`serious_aware_at`, which may be
later than the event's `aware_at`); the initial report and each follow-up are numbered
reports of the same event, each with a snapshot of the event as reported and the
notification rows that prove it was sent.
Instants are stored in UTC; screens show them in the site's time zone.
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ecrf.accounts.access import scope
from ecrf.crfs.models import SafetyLabs
from ecrf.patients.form_index import IndexedForm

# The ICH E2A seriousness criteria, in the order of the form and of the CDISC AE domain.
SAE_CRITERIA = (
    "sae_death",
    "sae_life_threatening",
    "sae_hospitalisation",
    "sae_disability",
    "sae_congenital_anomaly",
    "sae_important_medical_event",
)
# ISO 8601 year-month or year-month-day: a partial onset keeps its precision (AESTDTC).
PARTIAL_DATE_RE = r"^[0-9]{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?$"
MEDDRA_CODE_RE = r"^[0-9]{8}$"


def _any_criterion() -> models.Q:
    q = models.Q()
    for name in SAE_CRITERIA:
        q |= models.Q(**{name: True})
    return q


class Relatedness(models.TextChoices):
    NOT_RELATED = "not_related", _("Not related")
    UNLIKELY = "unlikely", _("Unlikely")
    POSSIBLE = "possible", _("Possible")
    PROBABLE = "probable", _("Probable")
    DEFINITE = "definite", _("Definite")


class Action(models.TextChoices):
    NONE = "none", _("None")
    DOSE_REDUCED = "dose_reduced", _("Dose reduced")
    INTERRUPTED = "interrupted", _("Drug interrupted")
    WITHDRAWN = "withdrawn", _("Drug withdrawn")


class Outcome(models.TextChoices):
    RECOVERED = "recovered", _("Recovered/resolved")
    RECOVERING = "recovering", _("Recovering/resolving")
    NOT_RECOVERED = "not_recovered", _("Not recovered/not resolved")
    RECOVERED_WITH_SEQUELAE = "recovered_with_sequelae", _("Recovered with sequelae")
    FATAL = "fatal", _("Fatal")
    UNKNOWN = "unknown", _("Unknown")


class AdverseEventQuerySet(models.QuerySet):
    def visible_to(self, user) -> AdverseEventQuerySet:
        """The only way views read adverse events: the user's sites in the user's studies."""
        return self.filter(scope(user).site_filter("patient__study_id", "patient__site_id"))


@pghistory.track()
class AdverseEvent(models.Model):
    # The choices live at module level, where Meta's constraints can name their values.
    Relatedness = Relatedness
    Action = Action
    Outcome = Outcome

    # The protocol form this model implements (studies.protocol.form_codes).
    FORM_CODE = "adverse_event"
    # scoring.md §6 [D]: "related" for reporting means possible or stronger.
    RELATED = frozenset({"possible", "probable", "definite"})

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="adverse_events"
    )
    number = models.PositiveSmallIntegerField(
        _("AE number"), editable=False, help_text=_("Sequence of the event in the patient's log.")
    )
    protocol_version = models.ForeignKey(
        "studies.ProtocolVersion", on_delete=models.PROTECT, related_name="+"
    )
    term = models.CharField(
        _("adverse event term"),
        max_length=200,
        help_text=_("The investigator's words, verbatim (e.g. 'Nausea')."),
    )
    meddra_llt_code = models.CharField(
        _("MedDRA LLT code"), max_length=8, blank=True, help_text=_("8 digits, optional.")
    )
    meddra_pt_code = models.CharField(
        _("MedDRA PT code"), max_length=8, blank=True, help_text=_("8 digits, optional.")
    )
    onset_date = models.CharField(
        _("onset date"),
        max_length=10,
        help_text=_("YYYY-MM-DD, or YYYY-MM when the day is not known."),
    )
    end_date = models.DateField(_("end date"), null=True, blank=True)
    ongoing = models.BooleanField(_("ongoing"), default=False)
    ctcae_grade = models.PositiveSmallIntegerField(
        _("CTCAE grade"),
        choices=[(g, str(g)) for g in range(1, 6)],
        help_text=_("CTCAE v5.0: 1 mild … 5 death related to the event."),
    )
    serious = models.BooleanField(_("serious"), default=False)
    sae_death = models.BooleanField(_("results in death"), default=False)
    sae_life_threatening = models.BooleanField(_("life-threatening"), default=False)
    sae_hospitalisation = models.BooleanField(
        _("requires or prolongs hospitalisation"), default=False
    )
    sae_disability = models.BooleanField(
        _("persistent or significant disability/incapacity"), default=False
    )
    sae_congenital_anomaly = models.BooleanField(
        _("congenital anomaly/birth defect"), default=False
    )
    sae_important_medical_event = models.BooleanField(
        _("other important medical event"), default=False
    )
    relatedness = models.CharField(
        _("relatedness to the study drug"), max_length=12, choices=Relatedness.choices
    )
    sponsor_relatedness = models.CharField(
        _("sponsor's relatedness assessment"),
        max_length=12,
        choices=Relatedness.choices,
        blank=True,
        help_text=_("Kept beside the investigator's; if either says related, it is reported so."),
    )
    expected = models.BooleanField(
        _("expected"), help_text=_("Listed in the reference safety information (brochure).")
    )
    action_taken = models.CharField(
        _("action taken with the study drug"), max_length=12, choices=Action.choices
    )
    outcome = models.CharField(_("outcome"), max_length=24, choices=Outcome.choices)
    death_date = models.DateField(_("date of death"), null=True, blank=True)
    aware_at = models.DateTimeField(
        _("investigator aware at"), help_text=_("When the site learned of the event.")
    )
    # The SAE clock starts when the site learned that the event is serious: the same
    # moment for an event recorded serious (by default), a later one for an event that
    # became serious. Empty while the event is not serious; a downgrade clears it (the
    # audit trail keeps the value it had).
    serious_aware_at = models.DateTimeField(
        _("site aware of the seriousness at"),
        null=True,
        blank=True,
        help_text=_("When the site learned that the event is serious: the SAE clock starts here."),
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    authority_reported_at = models.DateTimeField(
        _("reported to the authorities at"),
        null=True,
        blank=True,
        help_text=_("Stops the SUSAR clock (entered by the sponsor)."),
    )

    objects = AdverseEventQuerySet.as_manager()

    class Meta:
        ordering = ["patient", "number"]
        verbose_name = _("adverse event")
        verbose_name_plural = _("adverse events")
        constraints = [
            models.UniqueConstraint(fields=["patient", "number"], name="unique_ae_number"),
            models.CheckConstraint(condition=~models.Q(term=""), name="ae_has_term"),
            models.CheckConstraint(
                condition=models.Q(onset_date__regex=PARTIAL_DATE_RE), name="ae_onset_format"
            ),
            models.CheckConstraint(
                condition=models.Q(meddra_llt_code="")
                | models.Q(meddra_llt_code__regex=MEDDRA_CODE_RE),
                name="ae_meddra_llt_format",
            ),
            models.CheckConstraint(
                condition=models.Q(meddra_pt_code="")
                | models.Q(meddra_pt_code__regex=MEDDRA_CODE_RE),
                name="ae_meddra_pt_format",
            ),
            models.CheckConstraint(
                condition=models.Q(ctcae_grade__gte=1, ctcae_grade__lte=5), name="ae_grade_1_to_5"
            ),
            models.CheckConstraint(
                condition=~models.Q(ongoing=True, end_date__isnull=False),
                name="ae_ongoing_has_no_end",
            ),
            models.CheckConstraint(
                condition=~models.Q(ctcae_grade=5)
                | models.Q(outcome="fatal", death_date__isnull=False),
                name="ae_grade5_is_fatal",
            ),
            models.CheckConstraint(
                condition=~models.Q(outcome="fatal") | models.Q(death_date__isnull=False),
                name="ae_fatal_has_death_date",
            ),
            # scoring.md §6: death is grade 5, and the other way round; a date of death
            # goes with the outcome "fatal" only; a death is serious ("results in death").
            models.CheckConstraint(
                condition=~models.Q(outcome="fatal") | models.Q(ctcae_grade=5),
                name="ae_fatal_is_grade5",
            ),
            models.CheckConstraint(
                condition=models.Q(death_date__isnull=True) | models.Q(outcome="fatal"),
                name="ae_death_date_if_fatal",
            ),
            models.CheckConstraint(
                condition=~models.Q(ctcae_grade=5) | models.Q(sae_death=True),
                name="ae_grade5_results_in_death",
            ),
            models.CheckConstraint(
                condition=models.Q(sae_death=False) | models.Q(outcome="fatal"),
                name="ae_results_in_death_is_fatal",
            ),
            models.CheckConstraint(
                condition=models.Q(relatedness__in=Relatedness.values),
                name="ae_relatedness_choice",
            ),
            models.CheckConstraint(
                condition=models.Q(sponsor_relatedness__in=["", *Relatedness.values]),
                name="ae_sponsor_relatedness_choice",
            ),
            models.CheckConstraint(
                condition=models.Q(action_taken__in=Action.values), name="ae_action_choice"
            ),
            models.CheckConstraint(
                condition=models.Q(outcome__in=Outcome.values), name="ae_outcome_choice"
            ),
            # Serious if and only if at least one ICH E2A criterion is ticked.
            models.CheckConstraint(
                condition=(models.Q(serious=True) & _any_criterion())
                | (models.Q(serious=False) & ~_any_criterion()),
                name="ae_serious_iff_criterion",
            ),
            # The SAE clock's start: set if and only if serious, never before the event
            # itself was known.
            models.CheckConstraint(
                condition=models.Q(serious=True, serious_aware_at__isnull=False)
                | models.Q(serious=False, serious_aware_at__isnull=True),
                name="ae_serious_aware_iff_serious",
            ),
            models.CheckConstraint(
                condition=models.Q(serious_aware_at__isnull=True)
                | models.Q(serious_aware_at__gte=models.F("aware_at")),
                name="ae_serious_aware_after_aware",
            ),
        ]
        indexes = [models.Index(fields=["serious", "aware_at"])]

    def __str__(self) -> str:
        return f"{self.patient} AE {self.number}: {self.term}"

    @property
    def label(self) -> str:
        return f"AE-{self.number:03d}"

    @classmethod
    def index_code(cls) -> str:
        return "adverse_event"  # the protocol's form code of the log

    def index_entry(self) -> IndexedForm:
        """This event in the form index: complete once recorded (the services save an event
        only when it meets every rule), in the patient's log rather than at a visit."""
        return IndexedForm(
            form_code=self.index_code(),
            object_id=self.pk,
            patient_id=self.patient_id,
            visit_id=None,
            status="complete",
            version=self.version,
            updated_at=self.updated_at,
        )

    @property
    def criteria(self) -> list[str]:
        return [name for name in SAE_CRITERIA if getattr(self, name)]

    @property
    def related(self) -> bool:
        """Reported as related when either the investigator or the sponsor says so."""
        return self.relatedness in self.RELATED or self.sponsor_relatedness in self.RELATED

    @property
    def susar(self) -> bool:
        """Suspected unexpected serious adverse reaction: serious, related, unexpected."""
        return self.serious and self.related and not self.expected

    @property
    def fatal_or_life_threatening(self) -> bool:
        return self.sae_death or self.sae_life_threatening or self.outcome == "fatal"

    @classmethod
    def readable_change(cls, change: dict) -> tuple[str, str, str]:
        """A report's {field, old, new} as the field's label and the two values as shown
        on the form (choice labels, yes/no), in the active language."""
        field = cls._meta.get_field(change["field"])

        def shown(value) -> str:
            if value is None or value == "":
                return "—"
            if isinstance(value, bool):
                return str(_("yes") if value else _("no"))
            return str(dict(field.flatchoices).get(value, value))

        return str(field.verbose_name), shown(change["old"]), shown(change["new"])


class SaeReportQuerySet(models.QuerySet):
    def visible_to(self, user) -> SaeReportQuerySet:
        return self.filter(
            scope(user).site_filter(
                "adverse_event__patient__study_id", "adverse_event__patient__site_id"
            )
        )


@pghistory.track()
class SaeReport(models.Model):
    """One report of a serious adverse event to the sponsor: the initial one or a follow-up.

    Number 0 is the initial report; it exists (pending) from the moment the event is
    marked serious, its `aware_at` is the event's `serious_aware_at` and its `due_at` the
    investigator's deadline (both follow the event until it is submitted). Follow-ups are
    numbered 1, 2, … and each carries what changed since the previous report.
    """

    adverse_event = models.ForeignKey(
        AdverseEvent, on_delete=models.PROTECT, related_name="sae_reports"
    )
    number = models.PositiveSmallIntegerField(_("report number"))
    aware_at = models.DateTimeField(
        _("aware at"), help_text=_("When the site learned of the event or the new information.")
    )
    due_at = models.DateTimeField(_("due at"))
    narrative = models.TextField(_("narrative"), blank=True)
    snapshot = models.JSONField(
        _("event as reported"), default=dict, help_text="The event's fields when submitted."
    )
    changes = models.JSONField(
        _("changes since the previous report"),
        default=list,
        help_text="[{field, old, new}] against the previous report's snapshot.",
    )
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(
        _("acknowledged by the sponsor at"),
        null=True,
        blank=True,
        help_text=_("The sponsor's first knowledge: SUSAR clocks start here."),
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SaeReportQuerySet.as_manager()

    class Meta:
        ordering = ["adverse_event", "number"]
        verbose_name = _("SAE report")
        verbose_name_plural = _("SAE reports")
        constraints = [
            models.UniqueConstraint(
                fields=["adverse_event", "number"], name="unique_sae_report_number"
            ),
            models.CheckConstraint(
                condition=models.Q(due_at__gte=models.F("aware_at")), name="sae_due_after_aware"
            ),
            models.CheckConstraint(
                condition=models.Q(submitted_at__isnull=True)
                | models.Q(submitted_by__isnull=False),
                name="sae_submitted_has_submitter",
            ),
            models.CheckConstraint(
                condition=models.Q(acknowledged_at__isnull=True)
                | models.Q(submitted_at__isnull=False),
                name="sae_acknowledged_after_submission",
            ),
            # Only the initial report waits to be submitted; a follow-up exists once sent.
            models.CheckConstraint(
                condition=models.Q(number=0) | models.Q(submitted_at__isnull=False),
                name="sae_follow_up_is_submitted",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.adverse_event.label} {self.kind_label}"

    @property
    def is_initial(self) -> bool:
        return self.number == 0

    @classmethod
    def index_code(cls) -> str:
        return "sae_report"

    @classmethod
    def index_queryset(cls):
        return cls.objects.select_related("adverse_event")

    def index_entry(self) -> IndexedForm:
        """This report in the form index, in the patient's log: in progress until submitted.

        A report is never edited once submitted (news is a follow-up), so it keeps version
        1; its last change is the sponsor's acknowledgement, or the submission.
        """
        return IndexedForm(
            form_code=self.index_code(),
            object_id=self.pk,
            patient_id=self.adverse_event.patient_id,
            visit_id=None,
            status="complete" if self.submitted_at else "in_progress",
            version=1,
            updated_at=self.acknowledged_at or self.submitted_at or self.created_at,
        )

    @property
    def kind_label(self) -> str:
        return _("initial report") if self.is_initial else _("follow-up %d") % self.number


class SaeNotificationQuerySet(models.QuerySet):
    def visible_to(self, user) -> SaeNotificationQuerySet:
        return self.filter(
            scope(user).site_filter(
                "report__adverse_event__patient__study_id",
                "report__adverse_event__patient__site_id",
            )
        )


class SaeNotification(models.Model):
    """The record that one SAE report was notified to one recipient list, once.

    The unique report makes queuing the notification twice a no-op; the email row it
    points to is claimed by a conditional UPDATE when sent, so a task run twice, or
    two workers racing, send it once.
    """

    report = models.OneToOneField(SaeReport, on_delete=models.PROTECT, related_name="notification")
    email = models.OneToOneField(
        "notifications.OutboundEmail", on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SaeNotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("SAE notification")

    def __str__(self) -> str:
        return f"notification of {self.report}"


class LabAlertStatus(models.TextChoices):
    OPEN = "open", _("Open")
    AE_RECORDED = "ae_recorded", _("Adverse event recorded")
    DISMISSED = "dismissed", _("Dismissed")
    WITHDRAWN = "withdrawn", _("Withdrawn (value corrected)")


class LabAlertQuerySet(models.QuerySet):
    def visible_to(self, user) -> LabAlertQuerySet:
        return self.filter(scope(user).site_filter("patient__study_id", "patient__site_id"))

    def open(self) -> LabAlertQuerySet:
        return self.filter(status=LabAlert.Status.OPEN)


@pghistory.track()
class LabAlert(models.Model):
    """A safety-lab value beyond the protocol's alert threshold, waiting for the investigator.

    It is answered by recording an adverse event (linked here) or dismissed with a
    reason. A value corrected back inside the limits withdraws an open prompt; another
    value beyond them reopens a withdrawn or dismissed one.
    """

    Status = LabAlertStatus  # at module level for Meta's constraint

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="lab_alerts"
    )
    visit = models.ForeignKey("patients.Visit", on_delete=models.PROTECT, related_name="+")
    labs = models.ForeignKey("crfs.SafetyLabs", on_delete=models.PROTECT, related_name="+")
    analyte = models.CharField(_("analyte"), max_length=32)
    value = models.DecimalField(_("value"), max_digits=10, decimal_places=3)
    limit = models.CharField(_("alert limit"), max_length=60)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.OPEN
    )
    adverse_event = models.ForeignKey(
        AdverseEvent, on_delete=models.PROTECT, null=True, blank=True, related_name="lab_alerts"
    )
    dismiss_reason = models.CharField(_("reason for dismissing"), max_length=300, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LabAlertQuerySet.as_manager()

    class Meta:
        ordering = ["patient", "created_at"]
        verbose_name = _("safety lab alert")
        constraints = [
            models.UniqueConstraint(fields=["labs", "analyte"], name="unique_lab_alert"),
            models.CheckConstraint(
                condition=models.Q(status__in=LabAlertStatus.values), name="lab_alert_status_choice"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="dismissed") | ~models.Q(dismiss_reason=""),
                name="lab_alert_dismissal_has_reason",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="ae_recorded") | models.Q(adverse_event__isnull=False),
                name="lab_alert_ae_linked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} {self.analyte} {self.value} ({self.limit})"

    @property
    def analyte_label(self) -> str:
        """The analyte as the safety_labs form names it, with its unit."""
        return str(SafetyLabs._meta.get_field(self.analyte).verbose_name)
