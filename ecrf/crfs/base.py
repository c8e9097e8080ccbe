"""The small base every case report form shares.

A form instance belongs to a patient and (except per-patient logs) to one visit. Its
status grows with review later (SDV, lock); `version` is the optimistic lock: a save
names the version it started from and is refused when somebody saved in between.
Derived values (scores, compliance) are computed in `compute_derived()` from
`ecrf.scoring`, never typed in.

What makes a form different from the others is declared on its model, so that a new
form is one model and one line in the protocol file: the class attributes below (live
totals, hidden answers, a grid layout...) and the methods a model overrides
(soft_warnings(), context_problems(), patient_facts(), index_entry()...). The service,
the form and the views read them; none of them tests a form code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.utils.functional import lazy
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ecrf.accounts.access import scope
from ecrf.patients.form_index import IndexedForm
from ecrf.scoring import ScoringInputError


@dataclass(frozen=True)
class SoftWarning:
    """A plausible but unusual value that the user saves only after confirming it."""

    code: str
    message: str


@dataclass(frozen=True)
class AreaGrid:
    """A form laid out as its paper sheet: one row per body area, the right and the left
    side side by side (no left field: a midline area with one score), the fields before
    the grid, and a note beside it."""

    rows: tuple[tuple[str, str, str | None], ...]  # label, right field, left field
    head: tuple[str, ...] = ()
    note: str = ""

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name for _label, *sides in self.rows for name in sides if name)


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
    # The field that tells apart the instances of a repeatable form at one visit (the
    # culture condition): their key in the form index.
    INDEX_KEY: ClassVar[str] = ""
    # The protocol's form conditions (patients.visits.conditions_met) are read from this
    # form's answers: saving it can change which forms a visit takes.
    DECIDES_CONDITIONS: ClassVar[bool] = False
    # Answers that apply only under another answer: field -> (controlling field, the value
    # that shows it). The page hides them otherwise, and a hidden answer is never kept.
    SHOW_IF: ClassVar[Mapping[str, tuple[str, object]]] = {}
    # Derived values the page shows live as the answers are typed (crfs:preview).
    LIVE_TOTAL: ClassVar[tuple[str, ...]] = ()
    # The paper sheet's grid, for a form entered area by area (mRSS); None: a plain form.
    AREA_GRID: ClassVar[AreaGrid | None] = None
    # The form records the consent itself: it comes first, and its dates are not checked
    # against a consent date.
    RECORDS_CONSENT: ClassVar[bool] = False
    # The form is the protocol's eligibility checklist: its questions are the criteria of
    # the patient's group, not the model's fields.
    PROTOCOL_CHECKLIST: ClassVar[bool] = False

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

    @classmethod
    def answer_fields(cls) -> list[str]:
        """The fields a user fills in: neither the base's bookkeeping nor derived values."""
        base = {f.name for f in CrfBase._meta.get_fields()} | {"id"}
        return [
            f.name
            for f in cls._meta.concrete_fields
            if f.editable and f.name not in base and not f.auto_created
        ]

    def without_hidden_answers(self, values: Mapping) -> dict:
        """`values` with the answers their condition hides (SHOW_IF) blanked.

        The controlling answer is read from `values`, else from the form as saved; a hidden
        answer is stored as the field's blank ("" for a text column, which refuses NULL).
        """
        values = dict(values)
        for name, (controller, shown) in self.SHOW_IF.items():
            if values.get(controller, getattr(self, controller)) != shown:
                values[name] = None if self._meta.get_field(name).null else ""
        return values

    def validate_answers(self) -> None:
        """Every rule of the answers themselves, raised together as a ValidationError keyed
        by field: the fields' validators and choices, clean() (rules across fields), then
        the scoring package's own input checks.

        The database constraints are not queried here one by one (validate_constraints()
        costs a query and a savepoint each): the database enforces them when the row is
        saved, and crf_save turns a refusal into a message on its field.
        """
        exclude = {f.name for f in self._meta.concrete_fields} - set(self.answer_fields())
        self.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        try:
            self.score()
        except ScoringInputError as exc:
            raise ValidationError({NON_FIELD_ERRORS: [str(exc)]}) from None

    def score(self):
        """The scoring package's result for these answers (None: the form has no score).

        Raises ScoringInputError for answers the score cannot take: validate_answers()
        reports it, compute_derived() leaves the derived values blank.
        """
        return None

    def compute_derived(self) -> None:
        """Fill derived fields from the raw answers; forms without any keep this no-op."""

    @classmethod
    def initial_values(cls, patient) -> dict:
        """Answers a new form starts with for this patient (none unless a model says)."""
        return {}

    def soft_warnings(self) -> list[SoftWarning]:
        """Plausible but unusual values that need the user's explicit confirmation."""
        return []

    def context_problems(self) -> dict[str, str]:
        """Answers that disagree with the patient's other data (field name -> message).

        The rules a form cannot check alone, because a new instance has no patient yet (the
        patient's allocated kit, their group's culture conditions); the save calls it.
        """
        return {}

    def patient_facts(self) -> dict[str, object]:
        """What this form establishes about the patient, as `Patient` fields.

        crf_save copies it onto the patient in the save's transaction, so that the schedule
        reads the patient, not the forms: the consent date, or protocol form conditions as
        ``{"conditions": {code: holds}}``. Most forms establish nothing.
        """
        return {}

    @classmethod
    def index_code(cls) -> str:
        return cls.FORM_CODE

    def index_entry(self) -> IndexedForm:
        """This instance in the form index (`ecrf.patients.form_index`): its own columns."""
        return IndexedForm(
            form_code=self.FORM_CODE,
            object_id=self.pk,
            patient_id=self.patient_id,
            visit_id=self.visit_id,
            status=self.status,
            version=self.version,
            updated_at=self.updated_at,
            key=(getattr(self, self.INDEX_KEY) or "") if self.INDEX_KEY else "",
        )


def _or_list(items: list[str]) -> str:
    if len(items) < 2:
        return "".join(items)
    return gettext("%(first)s or %(last)s") % {"first": ", ".join(items[:-1]), "last": items[-1]}


def _choice_message(field: models.Field) -> str:
    numeric = all(isinstance(value, int) for value, _label in field.choices)
    allowed = [str(value if numeric else label) for value, label in field.choices]
    return gettext("%(field)s: %(value)s is not allowed; choose %(allowed)s.") % {
        "field": capfirst(str(field.verbose_name)).replace("%", "%%"),
        "value": "%(value)s",
        "allowed": _or_list(allowed).replace("%", "%%"),
    }


# "Not one of the choices", naming the field and what it takes, in the language of the
# moment it is shown: numbers (mRSS, HAQ) as the numbers the form shows, answers with
# words (DLQI) by their labels. `%(value)s` is left for the ValidationError to fill in.
choice_message = lazy(_choice_message, str)
