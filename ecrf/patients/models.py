from __future__ import annotations

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ecrf.accounts.access import scope


class PatientQuerySet(models.QuerySet):
    def visible_to(self, user) -> PatientQuerySet:
        """The only way views read patients: the user's sites in the user's studies."""
        return self.filter(scope(user).site_filter("study_id", "site_id"))


# The facts copied from the forms are not tracked here: the form's own trail records them.
@pghistory.track(exclude=["consent_date", "conditions"])
class Patient(models.Model):
    """A participant. The subject code is the only identifier stored (no names, no birth date)."""

    class Status(models.TextChoices):
        SCREENING = "screening", _("Screening")
        SCREEN_FAILED = "screen_failed", _("Screen failed")
        ENROLLED = "enrolled", _("Enrolled")
        COMPLETED = "completed", _("Completed")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        DIED = "died", _("Died")

    # No visit or form is entered once a patient is in one of these.
    ENDED = frozenset({"screen_failed", "completed", "withdrawn", "died"})

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
    planned_day0_date = models.DateField(
        _("planned inclusion date"),
        null=True,
        blank=True,
        help_text=_(
            "When inclusion (day 0) is planned; reminders of what must be done before it "
            "count from it."
        ),
    )
    end_date = models.DateField(
        _("end of study date"),
        null=True,
        blank=True,
        help_text=_("Completion, withdrawal or death date."),
    )
    end_reason = models.CharField(_("end of study reason"), max_length=300, blank=True)
    # Facts the case report forms establish, copied here by crf_save from the form that
    # records them (its model's `patient_facts()`), so that the schedule and the safety
    # log read them without reading the forms (patients imports no form).
    consent_date = models.DateField(
        _("date of consent"),
        null=True,
        blank=True,
        editable=False,
        help_text="From the informed consent form; nothing happens before it.",
    )
    conditions = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="The protocol's form conditions that hold (e.g. female_childbearing_potential), "
        "from the forms that decide them.",
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
            models.CheckConstraint(
                condition=models.Q(planned_day0_date__isnull=True)
                | models.Q(planned_day0_date__gte=models.F("screening_date")),
                name="planned_day0_not_before_screening",
            ),
        ]
        indexes = [models.Index(fields=["study", "site", "status"])]

    def __str__(self) -> str:
        return self.subject_code


class AllocationListQuerySet(models.QuerySet):
    def visible_to(self, user) -> AllocationListQuerySet:
        return self.filter(scope(user).site_filter("study_id", "site_id"))


@pghistory.track()
class AllocationList(models.Model):
    """A site's randomisation list in a study; its slots are `Allocation` rows.

    Generated here by an unblinded user from a recorded seed (so that the list can be
    re-derived and checked), or imported from the trial statistician's file. A site may
    have several lists: a later one continues the sequence where the earlier one ends.
    """

    class Source(models.TextChoices):
        GENERATED = "generated", _("Generated")
        IMPORTED = "imported", _("Imported")

    study = models.ForeignKey(
        "studies.Study", on_delete=models.PROTECT, related_name="allocation_lists"
    )
    site = models.ForeignKey(
        "studies.Site", on_delete=models.PROTECT, related_name="allocation_lists"
    )
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    seed = models.BigIntegerField(
        _("seed"),
        null=True,
        blank=True,
        help_text=_("The random seed the list was generated from (none for an imported list)."),
    )
    block_sizes = models.JSONField(
        _("block sizes"), default=list, help_text=_("The block sizes drawn from, e.g. [2, 4].")
    )
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    objects = AllocationListQuerySet.as_manager()

    class Meta:
        ordering = ["study", "site", "created_at"]
        verbose_name = _("allocation list")
        verbose_name_plural = _("allocation lists")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(source="imported") | models.Q(seed__isnull=False),
                name="generated_allocation_list_has_seed",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} ({self.get_source_display()})"


class AllocationQuerySet(models.QuerySet):
    def visible_to(self, user) -> AllocationQuerySet:
        # Slots are visible at their site, taken or not; the arm itself is shown only to
        # unblinded users, which `can_see_allocation` decides at display time.
        return self.filter(scope(user).site_filter("study_id", "site_id"))

    def free(self) -> AllocationQuerySet:
        return self.filter(patient__isnull=True)


@pghistory.track(
    # Columns added with allocation lists are nullable in the (append-only) event table:
    # events recorded before them have no value, and cannot be updated to have one.
    attrs={
        name: models.ForeignKey(
            to,
            on_delete=models.DO_NOTHING,
            db_constraint=False,
            null=True,
            related_name="+",
            related_query_name="+",
        )
        for name, to in (
            ("allocation_list", "patients.AllocationList"),
            ("study", "studies.Study"),
            ("site", "studies.Site"),
        )
    }
    | {
        name: models.PositiveIntegerField(null=True)
        for name in ("sequence", "block_number", "block_size")
    },
)
class Allocation(models.Model):
    """One slot of a site's allocation list: an arm behind a kit number.

    Slots are created with their list and taken, lowest sequence first, by the patients of
    the site as they are randomised. Blinded users see the kit number, never the arm; the
    row is kept apart from the patient so that blinded screens never load it.
    """

    allocation_list = models.ForeignKey(
        AllocationList, on_delete=models.PROTECT, related_name="slots"
    )
    study = models.ForeignKey("studies.Study", on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey("studies.Site", on_delete=models.PROTECT, related_name="+")
    sequence = models.PositiveIntegerField(
        _("sequence"), help_text=_("Order in which the site's patients take the slots, from 1.")
    )
    block_number = models.PositiveIntegerField(_("block"))
    block_size = models.PositiveIntegerField(_("block size"))
    arm = models.CharField(_("arm"), max_length=16)
    kit_number = models.CharField(_("kit number"), max_length=32)
    patient = models.OneToOneField(
        Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="allocation"
    )
    allocated_at = models.DateTimeField(_("allocated at"), null=True, blank=True)
    allocated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = AllocationQuerySet.as_manager()

    class Meta:
        ordering = ["study", "site", "sequence"]
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")
        constraints = [
            models.UniqueConstraint(
                fields=["study", "site", "sequence"], name="unique_allocation_sequence"
            ),
            models.UniqueConstraint(fields=["study", "kit_number"], name="unique_kit_number"),
            models.CheckConstraint(
                condition=models.Q(sequence__gte=1, block_number__gte=1, block_size__gte=1),
                name="allocation_positions_from_one",
            ),
            models.CheckConstraint(
                condition=~models.Q(arm="") & ~models.Q(kit_number=""),
                name="allocation_has_arm_and_kit",
            ),
            # A slot is free (no patient, no who, no when) or taken with all three.
            models.CheckConstraint(
                condition=models.Q(
                    patient__isnull=True, allocated_at__isnull=True, allocated_by__isnull=True
                )
                | models.Q(
                    patient__isnull=False, allocated_at__isnull=False, allocated_by__isnull=False
                ),
                name="allocation_taken_with_who_and_when",
            ),
        ]
        indexes = [
            models.Index(
                fields=["study", "site", "sequence"],
                condition=models.Q(patient__isnull=True),
                name="allocation_free_slots",
            ),
        ]

    def __str__(self) -> str:
        # Never the arm: this text appears in the audit trail and in admin lists.
        if self.patient_id is None:
            return f"kit {self.kit_number}"
        return f"{self.patient} kit {self.kit_number}"


class UnblindingQuerySet(models.QuerySet):
    def visible_to(self, user) -> UnblindingQuerySet:
        return self.filter(scope(user).site_filter("patient__study_id", "patient__site_id"))


@pghistory.track()
class Unblinding(models.Model):
    """An emergency unblinding: the patient's investigator was shown the arm.

    The row is the flag "this patient is unblinded"; the arm itself is not copied here.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="unblindings")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(
        _("reason"), help_text=_("The medical emergency that requires knowing the treatment.")
    )
    at = models.DateTimeField(_("unblinded at"), auto_now_add=True)

    # An audit record (ecrf.audit.triggers): inserted and read, never changed, and the
    # application's database role holds only INSERT and SELECT on it.
    audit_record = True

    objects = UnblindingQuerySet.as_manager()

    class Meta:
        ordering = ["patient", "at"]
        verbose_name = _("emergency unblinding")
        verbose_name_plural = _("emergency unblindings")
        constraints = [
            models.CheckConstraint(condition=~models.Q(reason=""), name="unblinding_has_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.patient} unblinded"


class VisitQuerySet(models.QuerySet):
    def visible_to(self, user) -> VisitQuerySet:
        return self.filter(scope(user).site_filter("patient__study_id", "patient__site_id"))


@pghistory.track()
class Visit(models.Model):
    """One occurrence of a protocol visit for a patient, with its window in dates.

    The window dates are filled once day 0 is known (pre-inclusion visits exist from
    screening on, before day 0). `version` guards against two people saving at once.
    """

    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETE = "complete", _("Complete")
        MISSED = "missed", _("Missed")
        CLOSED = "closed", _("Closed (end of study)")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="visits")
    code = models.CharField(_("visit"), max_length=8)
    repeat = models.PositiveSmallIntegerField(
        default=1, help_text="Occurrence number of a repeatable (unscheduled) visit."
    )
    sequence = models.PositiveSmallIntegerField(
        help_text="Order of the visit in the protocol (unscheduled visits sort by date)."
    )
    protocol_version = models.ForeignKey(
        "studies.ProtocolVersion", on_delete=models.PROTECT, related_name="visits"
    )
    target_date = models.DateField(_("target date"), null=True, blank=True)
    earliest_date = models.DateField(_("earliest date"), null=True, blank=True)
    latest_date = models.DateField(_("latest date"), null=True, blank=True)
    visit_date = models.DateField(_("visit date"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PLANNED
    )
    missed_reason = models.CharField(_("reason the visit was missed"), max_length=300, blank=True)
    version = models.PositiveIntegerField(default=1)

    objects = VisitQuerySet.as_manager()

    class Meta:
        ordering = ["patient", "sequence", "repeat"]
        verbose_name = _("visit")
        verbose_name_plural = _("visits")
        # The reminders sweep looks up the visits still to take place by the day their
        # window opens, their target day and the day their window closes (or before it, when
        # overdue): the visits done or missed, most of them in a running study, stay out.
        indexes = [
            models.Index(
                fields=[field],
                condition=models.Q(status="planned", visit_date__isnull=True),
                name=f"visit_planned_{field.split('_')[0]}",
            )
            for field in ("earliest_date", "target_date", "latest_date")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "code", "repeat"], name="unique_visit_occurrence"
            ),
            models.CheckConstraint(
                condition=models.Q(earliest_date__isnull=True)
                | models.Q(latest_date__isnull=True)
                | models.Q(earliest_date__lte=models.F("latest_date")),
                name="visit_window_ordered",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="missed") | ~models.Q(missed_reason=""),
                name="missed_visit_has_reason",
            ),
        ]

    def __str__(self) -> str:
        suffix = f" #{self.repeat}" if self.repeat > 1 else ""
        return f"{self.patient} {self.code}{suffix}"


class DeviationQuerySet(models.QuerySet):
    def visible_to(self, user) -> DeviationQuerySet:
        return self.filter(scope(user).site_filter("patient__study_id", "patient__site_id"))

    def open(self) -> DeviationQuerySet:
        """The deviations that still stand (a re-dated visit closes the one it no longer has)."""
        return self.filter(closed_at__isnull=True)


@pghistory.track()
class Deviation(models.Model):
    """A protocol deviation, recorded when a visit falls outside its window (or is missed).

    A visit re-dated back inside its window no longer deviates: its deviation is closed
    (when, by whom, why), never deleted, so the audit trail and the row keep the history.
    """

    class Category(models.TextChoices):
        OUT_OF_WINDOW = "out_of_window", _("Visit outside its window")
        MISSED_VISIT = "missed_visit", _("Missed visit")
        OTHER = "other", _("Other")

    # What dating a visit can deviate by: its timing. A visit that took place was not
    # missed; "missed" is recorded only by declaring the visit missed.
    TIMING_CATEGORIES = (Category.OUT_OF_WINDOW,)

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="deviations")
    visit = models.ForeignKey(
        Visit, on_delete=models.PROTECT, null=True, blank=True, related_name="deviations"
    )
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    reason = models.TextField(_("reason"))
    days_outside = models.IntegerField(
        _("days outside the window"),
        null=True,
        blank=True,
        help_text=_("Negative when early, positive when late."),
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    close_reason = models.TextField(_("reason for closing"), blank=True)

    objects = DeviationQuerySet.as_manager()

    class Meta:
        ordering = ["patient", "recorded_at"]
        verbose_name = _("protocol deviation")
        constraints = [
            models.CheckConstraint(condition=~models.Q(reason=""), name="deviation_has_reason"),
            # Open (no when, who, why) or closed with all three.
            models.CheckConstraint(
                condition=models.Q(closed_at__isnull=True, closed_by__isnull=True, close_reason="")
                | (
                    models.Q(closed_at__isnull=False, closed_by__isnull=False)
                    & ~models.Q(close_reason="")
                ),
                name="deviation_closed_with_who_when_why",
            ),
            # A visit has one date, so at most one standing timing deviation.
            models.UniqueConstraint(
                fields=["visit"],
                condition=models.Q(category="out_of_window", closed_at__isnull=True),
                name="one_open_timing_deviation_per_visit",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient}: {self.get_category_display()}"


class FormIndexEntryQuerySet(models.QuerySet):
    def visible_to(self, user) -> FormIndexEntryQuerySet:
        return self.filter(scope(user).site_filter("patient__study_id", "patient__site_id"))


class FormIndexEntry(models.Model):
    """One form instance of a patient, whichever table holds it: the form index.

    The case report forms (one table each) and the safety log hold their own answers; the
    index holds one row per instance (patient, visit, form code, the instance's id, status,
    version, last change), the schedule's record of what each visit holds. The casebook,
    the visit page and visit completion read it, at a cost that does not grow with the
    number of form types. Only the save services write it, in the save's transaction
    (`ecrf.patients.form_index`); `manage.py form_index_check` compares it with the tables.
    Not audited itself: the instances are, and each row is derived from one.
    """

    class Status(models.TextChoices):
        # The forms' own statuses (crfs.base.CrfBase.Status); a safety record is complete
        # once saved, an SAE report once submitted.
        NOT_STARTED = "not_started", _("Not started")
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETE = "complete", _("Complete")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="form_entries")
    visit = models.ForeignKey(
        Visit,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="form_entries",
        help_text="None for the patient's logs (adverse events, SAE reports).",
    )
    form_code = models.CharField(
        max_length=32, help_text="The protocol's form code (mrss, adverse_event, ...)."
    )
    object_id = models.PositiveBigIntegerField(help_text="The instance's id in its own table.")
    key = models.CharField(
        max_length=32,
        blank=True,
        help_text="What tells apart the instances of a repeatable form at one visit "
        "(the culture condition).",
    )
    status = models.CharField(max_length=12, choices=Status.choices)
    version = models.PositiveIntegerField()
    updated_at = models.DateTimeField()
    # The review of the instance (ecrf.review.states): one place for every form table and
    # the safety log. `review_version` is the version the source data verification applies
    # to (None: nothing verified), `review_state` "verified" once every field of that
    # version is. A save that changes the version resets both in the same statement
    # (form_index_sync); the review app then carries forward what the change left
    # verified, and records the reset.
    review_state = models.CharField(
        max_length=16, blank=True, help_text="'' (entered) or 'verified' (ecrf.review.states)."
    )
    review_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The instance's version the verification applies to."
    )
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who completed the verification of this version.",
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    # The last reset of the verification by a change to the data, shown beside the form
    # ("SDV reset: changed by ... on ..."); the review app's marks keep every one.
    sdv_reset_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who changed verified data, resetting the verification.",
    )
    sdv_reset_at = models.DateTimeField(null=True, blank=True)

    objects = FormIndexEntryQuerySet.as_manager()

    class Meta:
        ordering = ["patient", "visit", "form_code", "object_id"]
        verbose_name = "form index entry"
        verbose_name_plural = "form index entries"
        constraints = [
            models.UniqueConstraint(
                fields=["form_code", "object_id"], name="unique_form_index_entry"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["not_started", "in_progress", "complete"]),
                name="form_index_entry_status_choice",
            ),
            # Verified means a version was verified, and only the current one can be.
            models.CheckConstraint(
                condition=~models.Q(review_state="verified")
                | models.Q(review_version=models.F("version")),
                name="form_index_entry_verified_is_current",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.form_code} #{self.object_id} ({self.patient_id})"


class DataLockQuerySet(models.QuerySet):
    def visible_to(self, user) -> DataLockQuerySet:
        """A study-wide lock is seen by every member of the study; the others at their site."""
        where = scope(user)
        return self.filter(
            (models.Q(site__isnull=True) & where.study_filter("study_id"))
            | where.site_filter("study_id", "site_id")
        )

    def active(self) -> DataLockQuerySet:
        """The locks that hold: placed and not lifted."""
        return self.filter(lifted_at__isnull=True)


@pghistory.track()
class DataLock(models.Model):
    """A freeze or a lock placed by a data manager on a form, a visit, a casebook, a site or
    a whole study (the database lock).

    Frozen data cannot change, but review goes on (SDV, queries); locked data accept
    nothing. The save services of every app check it before they write
    (`ecrf.patients.locks`), which is why it lives here, below them all. A lock is never
    deleted nor edited: lifting it records who, when and why, and the row stays.

    The level's own target and everything above it are filled in (a visit's lock names
    its patient, site and study), so that one query finds every lock that covers a row.
    """

    class Kind(models.TextChoices):
        FREEZE = "freeze", _("Freeze")
        LOCK = "lock", _("Lock")

    class Level(models.TextChoices):
        STUDY = "study", _("Study")
        SITE = "site", _("Site")
        PATIENT = "patient", _("Casebook")
        VISIT = "visit", _("Visit")
        FORM = "form", _("Form")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    level = models.CharField(_("level"), max_length=8, choices=Level.choices)
    study = models.ForeignKey("studies.Study", on_delete=models.PROTECT, related_name="data_locks")
    site = models.ForeignKey(
        "studies.Site", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="data_locks"
    )
    visit = models.ForeignKey(
        Visit, on_delete=models.PROTECT, null=True, blank=True, related_name="data_locks"
    )
    entry = models.ForeignKey(
        FormIndexEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="data_locks",
        help_text="The form instance of a form-level lock (a CRF, an adverse event).",
    )
    reason = models.TextField(
        _("reason"), help_text=_("Why the data are frozen or locked, e.g. the interim analysis.")
    )
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    placed_at = models.DateTimeField(_("placed at"), auto_now_add=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lift_reason = models.TextField(_("reason for lifting"), blank=True)

    objects = DataLockQuerySet.as_manager()

    # What each level names: its own target and the ones above it, nothing below.
    TARGETS = {
        Level.STUDY: (),
        Level.SITE: ("site",),
        Level.PATIENT: ("site", "patient"),
        Level.VISIT: ("site", "patient", "visit"),
        # A form of the patient's log (an adverse event) is at no visit.
        Level.FORM: ("site", "patient", "entry"),
    }

    class Meta:
        ordering = ["study", "placed_at"]
        verbose_name = _("data lock")
        verbose_name_plural = _("data locks")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["freeze", "lock"]), name="data_lock_kind_choice"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(
                        level="study",
                        site__isnull=True,
                        patient__isnull=True,
                        visit__isnull=True,
                        entry__isnull=True,
                    )
                    | models.Q(
                        level="site",
                        site__isnull=False,
                        patient__isnull=True,
                        visit__isnull=True,
                        entry__isnull=True,
                    )
                    | models.Q(
                        level="patient",
                        site__isnull=False,
                        patient__isnull=False,
                        visit__isnull=True,
                        entry__isnull=True,
                    )
                    | models.Q(
                        level="visit",
                        site__isnull=False,
                        patient__isnull=False,
                        visit__isnull=False,
                        entry__isnull=True,
                    )
                    | models.Q(
                        level="form",
                        site__isnull=False,
                        patient__isnull=False,
                        entry__isnull=False,
                    )
                ),
                name="data_lock_level_targets",
            ),
            models.CheckConstraint(condition=~models.Q(reason=""), name="data_lock_has_reason"),
            # In place (no when, who, why of lifting) or lifted with all three.
            models.CheckConstraint(
                condition=models.Q(lifted_at__isnull=True, lifted_by__isnull=True, lift_reason="")
                | (
                    models.Q(lifted_at__isnull=False, lifted_by__isnull=False)
                    & ~models.Q(lift_reason="")
                ),
                name="data_lock_lifted_with_who_when_why",
            ),
            # One freeze and one lock at most in place on a target (a lock may stand over a
            # freeze: lifting it leaves the data frozen).
            models.UniqueConstraint(
                fields=["kind", "level", "study", "site", "patient", "visit", "entry"],
                condition=models.Q(lifted_at__isnull=True),
                nulls_distinct=False,
                name="one_data_lock_in_place_per_target",
            ),
        ]
        indexes = [
            models.Index(
                fields=["study"], condition=models.Q(lifted_at__isnull=True), name="data_locks_held"
            ),
        ]
        # Never deleted nor edited, whatever the code path: the database refuses. Lifting
        # (filling in who, when and why, once) is the only change.
        triggers = [
            pgtrigger.Protect(name="data_lock_never_deleted", operation=pgtrigger.Delete),
            pgtrigger.Protect(
                name="data_lock_placement_fixed",
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange(exclude=["lifted_by", "lifted_at", "lift_reason"]),
            ),
            pgtrigger.Protect(
                name="data_lock_lifted_once",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__lifted_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        target = {
            "study": lambda: self.study.code,
            "site": lambda: f"{self.study.code} {self.site.code}",
            "patient": lambda: str(self.patient),
            "visit": lambda: str(self.visit),
            "form": lambda: str(self.entry),
        }[self.level]()
        return f"{self.get_kind_display()} {self.get_level_display().lower()} {target}"

    @property
    def is_lock(self) -> bool:
        return self.kind == self.Kind.LOCK
