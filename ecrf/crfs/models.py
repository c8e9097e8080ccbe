"""One model per case report form of the protocols (``crf-spec.md``), except the adverse
event log, which the safety app builds.

Field names are the data dictionary keys of ``crf-spec.md`` and ``scoring.md``: the same
names go to the scoring functions, the exports and the protocol checks, so a key is never
translated between layers.

Conventions:

- Answers are nullable (``null=True, blank=True``; text fields use ``""`` as Django does) so
  a form can be saved half-filled (status ``in_progress``); ``REQUIRED_FIELDS`` lists what
  must be filled for ``complete``, and ``missing_fields()`` adds the conditional ones.
- Every range has two guards: field validators (or choices), so a form names the field and
  the allowed range, and a database ``CheckConstraint`` named ``%(class)s_<field>_range``
  (``mrss_face_range``), so a value that bypasses the form (``update()``, raw SQL) is still
  refused; ``crf_save`` reads the field back from the name to put the refusal on it.
  A NULL passes a CHECK in SQL, which keeps blanks allowed without spelling it out.
- Derived values (scores, classification, compliance) are ``editable=False`` and computed in
  ``compute_derived()`` from ``ecrf.scoring``, which ``CrfBase.save()`` calls on every save.
- Every model is tracked by pghistory: database triggers write an event for each insert,
  update and delete, whatever the code path.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import ClassVar

import pghistory
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Case, Q, Value, When
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact, LessThanOrEqual
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ecrf.crfs.base import AreaGrid, CrfBase, SoftWarning, choice_message
from ecrf.patients.models import Allocation, Patient
from ecrf.scoring import ScoringInputError, dlqi, haq, mrss, sle2019, ssc2013

# -- small builders for the repeated field and constraint shapes ---------------------------


def _range(field: str, low=None, high=None) -> models.CheckConstraint:
    bounds = {}
    if low is not None:
        bounds[f"{field}__gte"] = low
    if high is not None:
        bounds[f"{field}__lte"] = high
    return models.CheckConstraint(condition=Q(**bounds), name=f"%(class)s_{field}_range")


def _sum_is_total(total: str, parts, *, name: str) -> models.CheckConstraint:
    """The stored total is the plain sum of its parts, or blank while a part is blank.

    Derived scores cannot go stale [D]: a bulk `update()` or a raw SQL UPDATE that changes
    a part without its total is refused by the database, rather than recomputed by a
    trigger (a second copy of the scoring, in PL/pgSQL, that could drift from
    `ecrf.scoring`) or derived at read time (every list, export and chart would have to
    score each row). The save services compute the total as before; this says they did.
    Both sides are coalesced to -1, so that NULLs compare (a CHECK that is NULL passes).
    """
    parts_sum = models.F(parts[0])
    for part in parts[1:]:
        parts_sum = parts_sum + models.F(part)
    return models.CheckConstraint(
        condition=Exact(
            Coalesce(models.F(total), models.Value(-1)),
            Coalesce(parts_sum, models.Value(-1)),
        ),
        name=name,
        violation_error_message=_("The total is the sum of its parts; it was not recomputed."),
    )


def _dlqi_checks() -> list[models.CheckConstraint]:
    """The DLQI's stored total and imputed count are what `ecrf.scoring.dlqi` gives for the
    stored answers (see `_sum_is_total` for why a check): each item scores 3, 2, 1 for
    "very much", "a lot", "a little" and 0 otherwise ("not at all", "not relevant", or
    blank); q7 is q7a "yes" 3, or q7b's score when q7a is "no"; one missing item is scored
    0 and counted, two or more leave the total blank."""
    integer = models.IntegerField()

    def score(field, answers):
        whens = [When(**{field: code}, then=Value(n)) for code, n in answers if n]
        return Case(*whens, default=Value(0), output_field=integer)

    def blank(*conditions):
        whens = [When(**condition, then=Value(1)) for condition in conditions]
        return Case(*whens, default=Value(0), output_field=integer)

    def scale(answers):  # the coded answers that score, from the scoring module's table
        return [(code, points) for code, points in answers.items() if isinstance(code, str)]

    items = [field for field in DLQI_QUESTIONS if field not in ("q7a", "q7b")]
    points = [score(field, scale(dlqi.ITEM_ANSWERS[field])) for field in items]
    points.append(
        Case(
            *(When(q7a=code, then=Value(n)) for code, n in scale(dlqi.Q7A_ANSWERS) if n),
            When(q7a=dlqi.Q7A_NO, then=score("q7b", scale(dlqi.Q7B_ANSWERS))),
            default=Value(0),
            output_field=integer,
        )
    )
    missing = [blank({field: ""}) for field in items]
    missing.append(blank({"q7a": ""}, {"q7a": DlqiQ7a.NO, "q7b": ""}))
    total, count = points[0], missing[0]
    for more in points[1:]:
        total = total + more
    for more in missing[1:]:
        count = count + more
    calculable = LessThanOrEqual(count, Value(dlqi.MAX_IMPUTED))
    return [
        models.CheckConstraint(
            condition=Exact(
                Coalesce(models.F("total"), Value(-1)),
                Case(When(calculable, then=total), default=Value(-1), output_field=integer),
            ),
            name="%(class)s_total_is_the_score_of_the_answers",
            violation_error_message=_("The total is the score of the answers; not recomputed."),
        ),
        models.CheckConstraint(
            condition=Exact(
                models.F("imputed_items"),
                Case(When(calculable, then=count), default=Value(0), output_field=integer),
            ),
            name="%(class)s_imputed_items_counts_the_blank_answers",
        ),
    ]


def _one_of(field: str, choices, *, blank: bool = True) -> models.CheckConstraint:
    allowed = [value for value, _label in choices] + ([""] if blank else [])
    return models.CheckConstraint(
        condition=Q(**{f"{field}__in": allowed}), name=f"%(class)s_{field}_range"
    )


def _one_per_visit(*also: str) -> list[models.BaseConstraint]:
    """Visit forms: exactly one instance per visit (per ``also`` for repeatable ones)."""
    return [
        models.UniqueConstraint(fields=["visit", *also], name="%(class)s_one_per_visit"),
        # CrfBase allows a null visit for per-patient logs; none of these forms is one.
        models.CheckConstraint(condition=Q(visit__isnull=False), name="%(class)s_visit_required"),
    ]


def _yes_no(label, help_text="") -> models.BooleanField:
    """A question answered yes or no; null until answered."""
    return models.BooleanField(label, null=True, blank=True, help_text=help_text)


def _tick(label, help_text="") -> models.BooleanField:
    """A tick box: unticked is a valid answer (False), never "not answered"."""
    return models.BooleanField(label, default=False, help_text=help_text)


def _measure(label, digits: int, places: int, help_text="", low=0, high=None):
    validators = [MinValueValidator(low)] + ([MaxValueValidator(high)] if high is not None else [])
    return models.DecimalField(
        label,
        max_digits=digits,
        decimal_places=places,
        null=True,
        blank=True,
        validators=validators,
        help_text=help_text,
    )


def _int(label, low: int, high: int, help_text="") -> models.PositiveSmallIntegerField:
    return models.PositiveSmallIntegerField(
        label,
        null=True,
        blank=True,
        validators=[MinValueValidator(low), MaxValueValidator(high)],
        help_text=help_text,
    )


def _label(model: type[CrfBase], field: str) -> str:
    return capfirst(model._meta.get_field(field).verbose_name)


# -- study 1 (NCT00479934) and shared forms -------------------------------------------------


class Sex(models.TextChoices):
    FEMALE = "F", _("Female")
    MALE = "M", _("Male")


@pghistory.track()
class Demographics(CrfBase):
    FORM_CODE = "demographics"
    REQUIRED_FIELDS = ("birth_year", "sex")
    SHOW_IF: ClassVar[Mapping[str, tuple[str, str]]] = {"childbearing_potential": ("sex", "F")}
    DECIDES_CONDITIONS = True  # female_childbearing_potential

    # Year (and month) of birth only: the subject code is the only identifier stored.
    birth_year = _int(_("year of birth"), 1900, 2100)
    birth_month = _int(
        _("month of birth"), 1, 12, help_text=_("Optional; makes the age at consent exact.")
    )
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, blank=True)
    childbearing_potential = _yes_no(
        _("childbearing potential"),
        help_text=_("Women only: decides whether a pregnancy test is required."),
    )
    initials = models.CharField(
        _("initials"),
        max_length=3,
        blank=True,
        validators=[RegexValidator(r"^[A-Za-z]{1,3}$", _("Up to 3 letters, nothing else."))],
        help_text=_("Optional, at most 3 letters."),
    )

    class Meta:
        verbose_name = _("demographics")
        verbose_name_plural = _("demographics")
        constraints = [
            *_one_per_visit(),
            _range("birth_year", 1900, 2100),
            _range("birth_month", 1, 12),
            _one_of("sex", Sex.choices),
            models.CheckConstraint(
                condition=~Q(sex="M") | Q(childbearing_potential__isnull=True),
                name="%(class)s_childbearing_potential_female_only",
                violation_error_message=_("Childbearing potential is recorded for women only."),
            ),
            models.CheckConstraint(
                condition=Q(initials__regex=r"^[A-Za-z]{0,3}$"), name="%(class)s_initials_range"
            ),
        ]

    def clean(self) -> None:
        # On the field, where the constraint's message would be a form-wide error.
        if self.sex == Sex.MALE and self.childbearing_potential is not None:
            raise ValidationError({"childbearing_potential": _("Leave blank for men.")})

    def missing_fields(self) -> list[str]:
        missing = super().missing_fields()
        if self.sex == Sex.FEMALE and self.childbearing_potential is None:
            missing.append("childbearing_potential")
        return missing

    def patient_facts(self) -> dict[str, object]:
        # The protocol's forms "condition: female_childbearing_potential" (pregnancy test).
        potential = self.sex == Sex.FEMALE and self.childbearing_potential is True
        return {"conditions": {"female_childbearing_potential": potential}}


@pghistory.track()
class Consent(CrfBase):
    FORM_CODE = "consent"
    REQUIRED_FIELDS = ("consent_date", "consent_version", "signed_by_investigator")
    RECORDS_CONSENT = True

    consent_date = models.DateField(
        _("date of consent"), null=True, blank=True, help_text=_("Date the patient signed.")
    )
    consent_version = models.CharField(
        _("consent form version"),
        max_length=32,
        blank=True,
        help_text=_("Version of the information and consent form signed."),
    )
    signed_by_investigator = _yes_no(_("signed by the investigator"))

    class Meta:
        verbose_name = _("informed consent")
        verbose_name_plural = _("informed consents")
        constraints = [*_one_per_visit()]

    def context_problems(self) -> dict[str, str]:
        if self.consent_date is None:
            return {}
        # A visit dated before the consent was recorded cannot be checked when it is dated:
        # the consent then refuses a date after it.
        earlier = (
            self.patient.visits.filter(visit_date__lt=self.consent_date)
            .order_by("visit_date", "sequence")
            .first()
        )
        if earlier is None:
            return {}
        return {
            "consent_date": _(
                "Visit %(code)s took place on %(date)s, before this consent date: "
                "nothing happens before consent."
            )
            % {"code": earlier.code, "date": earlier.visit_date.isoformat()}
        }

    def patient_facts(self) -> dict[str, object]:
        return {"consent_date": self.consent_date}


class SscType(models.TextChoices):
    SYSTEMIC = "systemic", _("Systemic")
    CUTANEOUS = "cutaneous", _("Cutaneous")


@pghistory.track()
class MedicalHistory(CrfBase):
    FORM_CODE = "medical_history"
    HISTORY_DATES = (
        "mi_date",
        "major_surgery_date",
        "interfering_treatment_start_date",
        "interfering_treatment_end_date",
    )
    REQUIRED_FIELDS = (
        "ssc_type",
        "diagnosis_year",
        "en_coup_de_sabre",
        "ongoing_cancer",
        "uncontrolled_diabetes",
        "chronic_kidney_failure",
        "chronic_hepatitis",
        "hiv_infection",
    )

    ssc_type = models.CharField(
        _("type of scleroderma"), max_length=10, choices=SscType.choices, blank=True
    )
    diagnosis_year = _int(_("year of diagnosis"), 1900, 2100)
    en_coup_de_sabre = _yes_no(_('scleroderma "en coup de sabre"'))
    ongoing_cancer = _yes_no(_("ongoing cancer"))
    # A blank date means no such event: the eligibility checks read "absent or old enough".
    mi_date = models.DateField(
        _("date of last myocardial infarction"),
        null=True,
        blank=True,
        help_text=_("Leave blank if the patient never had one."),
    )
    major_surgery_date = models.DateField(
        _("date of last major surgery"),
        null=True,
        blank=True,
        help_text=_("Leave blank if the patient never had any."),
    )
    uncontrolled_diabetes = _yes_no(_("uncontrolled diabetes"))
    chronic_kidney_failure = _yes_no(_("uncontrolled chronic kidney failure"))
    chronic_hepatitis = _yes_no(_("uncontrolled chronic hepatitis"))
    hiv_infection = _yes_no(_("uncontrolled HIV infection"))
    interfering_treatment_name = models.CharField(
        _("recent interfering treatment"),
        max_length=200,
        blank=True,
        help_text=_(
            "Systemic treatment potentially interfering with the disease (e.g. systemic "
            "corticosteroids, methotrexate, cyclophosphamide, bosentan); blank if none."
        ),
    )
    interfering_treatment_start_date = models.DateField(
        _("interfering treatment start date"), null=True, blank=True
    )
    interfering_treatment_end_date = models.DateField(
        _("interfering treatment end date"),
        null=True,
        blank=True,
        help_text=_("Date of the last intake; blank if ongoing."),
    )

    class Meta:
        verbose_name = _("medical history")
        verbose_name_plural = _("medical histories")
        constraints = [
            *_one_per_visit(),
            _one_of("ssc_type", SscType.choices),
            _range("diagnosis_year", 1900, 2100),
            models.CheckConstraint(
                condition=Q(
                    interfering_treatment_end_date__gte=models.F("interfering_treatment_start_date")
                ),
                name="%(class)s_interfering_treatment_end_date_range",
                violation_error_message=_("The treatment cannot end before it started."),
            ),
        ]

    def missing_fields(self) -> list[str]:
        missing = super().missing_fields()
        if self.interfering_treatment_name and self.interfering_treatment_start_date is None:
            missing.append("interfering_treatment_start_date")
        return missing


@pghistory.track()
class Eligibility(CrfBase):
    FORM_CODE = "eligibility"
    PROTOCOL_CHECKLIST = True
    # The criteria come from the protocol file, so completeness is in missing_fields().
    REQUIRED_FIELDS = ()

    answers = models.JSONField(
        _("checklist answers"),
        default=dict,
        blank=True,
        help_text=_("Criterion id of the protocol (I1, E1...) to the answer, true or false."),
    )
    # Decided by the eligibility service (checklist against the data), never typed in.
    eligible = models.BooleanField(_("eligible"), null=True, blank=True, editable=False)
    screen_failure_reasons = models.TextField(_("reasons for screen failure"), blank=True)

    class Meta:
        verbose_name = _("eligibility checklist")
        verbose_name_plural = _("eligibility checklists")
        constraints = [*_one_per_visit()]

    def missing_fields(self) -> list[str]:
        """The protocol's criteria for the patient's group not answered yes or no, as
        ``answers.<id>``."""
        criteria = self.protocol_version.protocol.eligibility_for(self.patient.group or None)
        answers = self.answers or {}
        return [f"answers.{c.id}" for c in criteria if not isinstance(answers.get(c.id), bool)]


# Soft limits [D]: values a reviewer would query, which the investigator confirms.
MRSS_DROP_WARNING = 0.5  # a fall of more than 50 % since the previous visit
LVEF_LOW_WARNING_PCT = 30

# The mRSS grid, top to bottom as on the paper form: area, right side, left side (the
# midline areas have one score).
MRSS_ROWS = (
    (_("Face"), "face", None),
    (_("Anterior chest"), "anterior_chest", None),
    (_("Abdomen"), "abdomen", None),
    (_("Fingers"), "fingers_r", "fingers_l"),
    (_("Hand (dorsum)"), "hand_r", "hand_l"),
    (_("Forearm"), "forearm_r", "forearm_l"),
    (_("Upper arm"), "upper_arm_r", "upper_arm_l"),
    (_("Thigh"), "thigh_r", "thigh_l"),
    (_("Lower leg"), "lower_leg_r", "lower_leg_l"),
    (_("Foot (dorsum)"), "foot_r", "foot_l"),
)


class MrssScore(models.IntegerChoices):
    NORMAL = 0, _("0 normal")
    MILD = 1, _("1 mild")
    MODERATE = 2, _("2 moderate")
    SEVERE = 3, _("3 severe")


def _area(label) -> models.PositiveSmallIntegerField:
    return models.PositiveSmallIntegerField(
        label,
        choices=MrssScore.choices,
        null=True,
        blank=True,
        help_text=_("Blank when not assessable: give the reason below."),
    )


@pghistory.track()
class Mrss(CrfBase):
    FORM_CODE = "mrss"
    REQUIRED_FIELDS = ("exam_date", "assessor", *mrss.AREAS)
    LIVE_TOTAL = ("total",)
    AREA_GRID = AreaGrid(
        rows=MRSS_ROWS, head=("exam_date", "assessor"), note="not_assessable_reason"
    )

    exam_date = models.DateField(_("date of examination"), null=True, blank=True)
    assessor = models.CharField(
        _("assessor"),
        max_length=100,
        blank=True,
        help_text=_("Who scored the skin (the same assessor at every visit where possible)."),
    )
    face = _area(_("face"))
    anterior_chest = _area(_("anterior chest"))
    abdomen = _area(_("abdomen"))
    fingers_r = _area(_("fingers, right"))
    fingers_l = _area(_("fingers, left"))
    hand_r = _area(_("hand (dorsum), right"))
    hand_l = _area(_("hand (dorsum), left"))
    forearm_r = _area(_("forearm, right"))
    forearm_l = _area(_("forearm, left"))
    upper_arm_r = _area(_("upper arm, right"))
    upper_arm_l = _area(_("upper arm, left"))
    thigh_r = _area(_("thigh, right"))
    thigh_l = _area(_("thigh, left"))
    lower_leg_r = _area(_("lower leg, right"))
    lower_leg_l = _area(_("lower leg, left"))
    foot_r = _area(_("foot (dorsum), right"))
    foot_l = _area(_("foot (dorsum), left"))
    not_assessable_reason = models.TextField(
        _("reason an area is not assessable"),
        blank=True,
        help_text=_("Amputation, wound, dressing...: required for each area left blank."),
    )
    total = models.PositiveSmallIntegerField(
        _("total skin score"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("0..51; blank while an area is not scored (no proration)."),
    )

    class Meta:
        verbose_name = _("modified Rodnan skin score")
        verbose_name_plural = _("modified Rodnan skin scores")
        constraints = [
            *_one_per_visit(),
            *(_range(area, 0, 3) for area in mrss.AREAS),
            _range("total", 0, mrss.MAX_TOTAL),
            # mrss.score: the plain sum of the 17 areas, blank while one is (no proration).
            _sum_is_total("total", mrss.AREAS, name="%(class)s_total_is_sum_of_areas"),
        ]

    def missing_fields(self) -> list[str]:
        missing = super().missing_fields()
        if self.not_assessable_reason:
            # A documented not-assessable area is an answer, though it leaves the total blank.
            missing = [name for name in missing if name not in mrss.AREAS]
        return missing

    def score(self) -> mrss.MrssResult:
        return mrss.score({area: getattr(self, area) for area in mrss.AREAS})

    def soft_warnings(self) -> list[SoftWarning]:
        if self.total is None:
            return []
        previous = (
            Mrss.objects.filter(
                patient=self.patient,
                total__isnull=False,
                visit__visit_date__lt=self.visit.visit_date,
            )
            .select_related("visit")
            .order_by("-visit__visit_date")
            .first()
        )
        if not (previous and previous.total):
            return []
        if (previous.total - self.total) / previous.total <= MRSS_DROP_WARNING:
            return []
        message = _("The mRSS falls from %(before)d at %(visit)s to %(now)d (more than 50 %%).") % {
            "before": previous.total,
            "visit": previous.visit.code,
            "now": self.total,
        }
        return [SoftWarning("mrss_drop", message)]

    def compute_derived(self) -> None:
        try:
            self.total = self.score().total
        except ScoringInputError:
            # Only a value that bypassed the form gets here; the database check refuses
            # the row, so leave the score blank rather than fail before it does.
            self.total = None


@pghistory.track()
class Echocardiography(CrfBase):
    FORM_CODE = "echocardiography"
    REQUIRED_FIELDS = ("exam_date", "lvef_pct")

    exam_date = models.DateField(_("date of examination"), null=True, blank=True)
    lvef_pct = _int(
        _("left ventricular ejection fraction (%)"), 10, 90, help_text=_("Percent, 10 to 90.")
    )

    class Meta:
        verbose_name = _("echocardiography")
        verbose_name_plural = _("echocardiographies")
        constraints = [
            *_one_per_visit(),
            _range("lvef_pct", 10, 90),
        ]

    def soft_warnings(self) -> list[SoftWarning]:
        if self.lvef_pct is None or self.lvef_pct >= LVEF_LOW_WARNING_PCT:
            return []
        message = _("LVEF %(value)s %% is under %(limit)d %%.") % {
            "value": self.lvef_pct,
            "limit": LVEF_LOW_WARNING_PCT,
        }
        return [SoftWarning("lvef_low", message)]


# Analytes recorded with an upper normal limit, `<analyte>_uln` (studies.protocol.ULN_ANALYTES).
ULN_ANALYTES = ("bilirubin_umol_l", "ast_u_l", "alt_u_l", "creatinine_umol_l")
LAB_ANALYTES = ("hemoglobin_g_dl", "neutrophils_x10e9_l", "platelets_x10e9_l", *ULN_ANALYTES)
# The lowest ULN the fields can hold: a ULN divides the value in the checks, so never 0.
MIN_ULN = Decimal("0.1")


def _uln(label) -> models.DecimalField:
    return _measure(label, 6, 1, help_text=_("Of the site's laboratory."), low=MIN_ULN)


@pghistory.track()
class SafetyLabs(CrfBase):
    FORM_CODE = "safety_labs"
    # Which analytes a visit needs is the protocol's business (its checks and alerts name
    # them); hemoglobin is the one both studies need at every sample.
    REQUIRED_FIELDS = ("sample_date", "hemoglobin_g_dl")

    sample_date = models.DateField(_("date of sample"), null=True, blank=True)
    hemoglobin_g_dl = _measure(_("hemoglobin (g/dL)"), 4, 1)
    neutrophils_x10e9_l = _measure(_("neutrophils (×10⁹/L)"), 5, 2)
    platelets_x10e9_l = _measure(_("platelets (×10⁹/L)"), 5, 0)
    bilirubin_umol_l = _measure(_("total bilirubin (µmol/L)"), 6, 1)
    bilirubin_umol_l_uln = _uln(_("bilirubin upper normal limit (µmol/L)"))
    ast_u_l = _measure(_("AST (SGOT) (U/L)"), 6, 1)
    ast_u_l_uln = _uln(_("AST upper normal limit (U/L)"))
    alt_u_l = _measure(_("ALT (SGPT) (U/L)"), 6, 1)
    alt_u_l_uln = _uln(_("ALT upper normal limit (U/L)"))
    creatinine_umol_l = _measure(_("creatinine (µmol/L)"), 6, 1)
    creatinine_umol_l_uln = _uln(_("creatinine upper normal limit (µmol/L)"))

    class Meta:
        verbose_name = _("safety laboratory tests")
        verbose_name_plural = _("safety laboratory tests")
        constraints = [
            *_one_per_visit(),
            *(_range(name, 0) for name in LAB_ANALYTES),
            *(_range(f"{name}_uln", MIN_ULN) for name in ULN_ANALYTES),
        ]

    def missing_fields(self) -> list[str]:
        # A value is judged against its ULN, so a value without one cannot be checked.
        missing = super().missing_fields()
        for name in ULN_ANALYTES:
            if getattr(self, name) is not None and getattr(self, f"{name}_uln") is None:
                missing.append(f"{name}_uln")
        return missing


class TestType(models.TextChoices):
    SERUM = "serum", _("Serum")
    URINE = "urine", _("Urine")


class TestResult(models.TextChoices):
    NEGATIVE = "negative", _("Negative")
    POSITIVE = "positive", _("Positive")


@pghistory.track()
class PregnancyTest(CrfBase):
    FORM_CODE = "pregnancy_test"
    REQUIRED_FIELDS = ("test_date", "test_type", "result")

    test_date = models.DateField(
        _("date of test"),
        null=True,
        blank=True,
        help_text=_("Within the 7 days before inclusion."),
    )
    test_type = models.CharField(
        _("type of test"), max_length=5, choices=TestType.choices, blank=True
    )
    result = models.CharField(_("result"), max_length=8, choices=TestResult.choices, blank=True)

    class Meta:
        verbose_name = _("pregnancy test")
        verbose_name_plural = _("pregnancy tests")
        constraints = [
            *_one_per_visit(),
            _one_of("test_type", TestType.choices),
            _one_of("result", TestResult.choices),
        ]


@pghistory.track()
class SkinBiopsy(CrfBase):
    FORM_CODE = "skin_biopsy"
    REQUIRED_FIELDS = ("biopsy_date", "body_site")

    biopsy_date = models.DateField(_("date of biopsy"), null=True, blank=True)
    body_site = models.CharField(
        _("body site"),
        max_length=100,
        blank=True,
        help_text=_("Where the biopsy was taken (the same site at M0 and M6)."),
    )
    dermal_thickness_um = models.PositiveIntegerField(
        _("dermal thickness (µm)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Measured on the histology slide, in micrometres."),
    )
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("skin biopsy")
        verbose_name_plural = _("skin biopsies")
        constraints = [
            *_one_per_visit(),
            _range("dermal_thickness_um", 1),
        ]


# The answer encodings are those ecrf.scoring.dlqi accepts, so answers go to it unchanged.
class DlqiAnswer(models.TextChoices):
    VERY_MUCH = "very_much", _("Very much")
    A_LOT = "a_lot", _("A lot")
    A_LITTLE = "a_little", _("A little")
    NOT_AT_ALL = "not_at_all", _("Not at all")


class DlqiAnswerNr(models.TextChoices):
    VERY_MUCH = "very_much", _("Very much")
    A_LOT = "a_lot", _("A lot")
    A_LITTLE = "a_little", _("A little")
    NOT_AT_ALL = "not_at_all", _("Not at all")
    NOT_RELEVANT = "NR", _("Not relevant")


class DlqiQ7a(models.TextChoices):
    YES = "yes", _("Yes")
    NO = "no", _("No")
    NOT_RELEVANT = "NR", _("Not relevant")


class DlqiQ7b(models.TextChoices):
    A_LOT = "a_lot", _("A lot")
    A_LITTLE = "a_little", _("A little")
    NOT_AT_ALL = "not_at_all", _("Not at all")


def _dlqi(label, choices) -> models.CharField:
    return models.CharField(label, max_length=10, choices=choices, blank=True)


class DlqiBand(models.TextChoices):
    NO_EFFECT = "no_effect", _("No effect on the patient's life")
    SMALL = "small", _("Small effect")
    MODERATE = "moderate", _("Moderate effect")
    VERY_LARGE = "very_large", _("Very large effect")
    EXTREMELY_LARGE = "extremely_large", _("Extremely large effect")


# Question field -> its answers: q1 and q2 have no "not relevant"; q7 is two questions.
DLQI_QUESTIONS: Mapping[str, type[models.TextChoices]] = {
    "q1": DlqiAnswer,
    "q2": DlqiAnswer,
    "q3": DlqiAnswerNr,
    "q4": DlqiAnswerNr,
    "q5": DlqiAnswerNr,
    "q6": DlqiAnswerNr,
    "q7a": DlqiQ7a,
    "q7b": DlqiQ7b,
    "q8": DlqiAnswerNr,
    "q9": DlqiAnswerNr,
    "q10": DlqiAnswerNr,
}


@pghistory.track()
class Dlqi(CrfBase):
    FORM_CODE = "dlqi"
    REQUIRED_FIELDS = ("q1", "q2", "q3", "q4", "q5", "q6", "q7a", "q8", "q9", "q10")
    SHOW_IF: ClassVar[Mapping[str, tuple[str, str]]] = {"q7b": ("q7a", "no")}
    LIVE_TOTAL = ("total", "band")

    q1 = _dlqi(_("1. itchy, sore, painful or stinging skin"), DlqiAnswer.choices)
    q2 = _dlqi(_("2. embarrassed or self-conscious"), DlqiAnswer.choices)
    q3 = _dlqi(_("3. shopping, home or garden"), DlqiAnswerNr.choices)
    q4 = _dlqi(_("4. choice of clothes"), DlqiAnswerNr.choices)
    q5 = _dlqi(_("5. social or leisure activities"), DlqiAnswerNr.choices)
    q6 = _dlqi(_("6. sport"), DlqiAnswerNr.choices)
    q7a = _dlqi(_("7. prevented you from working or studying"), DlqiQ7a.choices)
    q7b = _dlqi(_("7b. if no: a problem at work or studying"), DlqiQ7b.choices)
    q8 = _dlqi(_("8. partner, close friends or relatives"), DlqiAnswerNr.choices)
    q9 = _dlqi(_("9. sexual difficulties"), DlqiAnswerNr.choices)
    q10 = _dlqi(_("10. problems caused by the treatment"), DlqiAnswerNr.choices)
    total = models.PositiveSmallIntegerField(
        _("DLQI total"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("0..30; blank when two or more items are missing."),
    )
    band = models.CharField(
        _("DLQI band"), max_length=16, choices=DlqiBand.choices, blank=True, editable=False
    )
    imputed_items = models.PositiveSmallIntegerField(
        _("imputed items"),
        default=0,
        editable=False,
        help_text=_("Missing items scored 0 (at most one)."),
    )

    class Meta:
        verbose_name = _("Dermatology Life Quality Index")
        verbose_name_plural = _("Dermatology Life Quality Indexes")
        constraints = [
            *_one_per_visit(),
            *(_one_of(field, answers.choices) for field, answers in DLQI_QUESTIONS.items()),
            models.CheckConstraint(
                condition=Q(q7b="") | Q(q7a=DlqiQ7a.NO),
                name="%(class)s_q7b_only_after_q7a_no",
                violation_error_message=_('Question 7b is answered only when 7a is "no".'),
            ),
            _range("total", 0, 30),
            _range("imputed_items", 0, dlqi.MAX_IMPUTED),
            *_dlqi_checks(),
        ]

    def clean(self) -> None:
        # Attached to the field, where the constraint's message would be a form-wide error.
        if self.q7b and self.q7a != DlqiQ7a.NO:
            raise ValidationError({"q7b": _('Answer 7b only when 7a is "no".')})

    def missing_fields(self) -> list[str]:
        missing = super().missing_fields()
        if self.q7a == DlqiQ7a.NO and not self.q7b:
            missing.append("q7b")
        return missing

    def score(self) -> dlqi.DlqiResult:
        return dlqi.score({field: getattr(self, field) or None for field in DLQI_QUESTIONS})

    def compute_derived(self) -> None:
        try:
            result = self.score()
        except ScoringInputError:
            # Refused by clean() and the database checks; do not fail before they report.
            self.total, self.band, self.imputed_items = None, "", 0
            return
        self.total = result.total
        self.band = result.band or ""
        self.imputed_items = result.imputed


class HaqScore(models.IntegerChoices):
    WITHOUT_DIFFICULTY = 0, _("Without any difficulty")
    SOME_DIFFICULTY = 1, _("With some difficulty")
    MUCH_DIFFICULTY = 2, _("With much difficulty")
    UNABLE = 3, _("Unable to do")


def _haq_item(label) -> models.PositiveSmallIntegerField:
    return models.PositiveSmallIntegerField(label, choices=HaqScore.choices, null=True, blank=True)


def _vas(label) -> models.PositiveSmallIntegerField:
    return _int(label, 0, 100, help_text=_("0 to 100 (millimetres on a 100-mm line)."))


def _vas_score(label) -> models.FloatField:
    return models.FloatField(
        label, null=True, blank=True, editable=False, help_text=_("VAS × 0.03, 0..3.")
    )


@pghistory.track()
class Haq(CrfBase):
    # Derived VAS score field -> the scale it comes from (haq.VAS_SCALES).
    VAS_SCORES: ClassVar[Mapping[str, str]] = {
        "pain_score": "pain_vas",
        "global_score": "global_vas",
        "raynaud_score": "raynaud_vas",
        "digital_ulcer_score": "digital_ulcer_vas",
        "gi_score": "gi_vas",
        "breathing_score": "breathing_vas",
        "disease_severity_score": "disease_severity_vas",
    }

    FORM_CODE = "haq"
    REQUIRED_FIELDS = (*haq.ITEMS, *haq.VAS_SCALES)
    LIVE_TOTAL = ("di", "di_without_aids")

    # Dressing and grooming
    dress = _haq_item(_("dress yourself, including tying shoelaces and doing buttons"))
    shampoo = _haq_item(_("shampoo your hair"))
    # Arising
    stand_up = _haq_item(_("stand up from a straight chair without arms"))
    in_out_bed = _haq_item(_("get in and out of bed"))
    # Eating
    cut_meat = _haq_item(_("cut your meat"))
    lift_cup = _haq_item(_("lift a full cup or glass to your mouth"))
    open_carton = _haq_item(_("open a new milk carton"))
    # Walking
    walk_outdoors = _haq_item(_("walk outdoors on flat ground"))
    climb_steps = _haq_item(_("climb up five steps"))
    # Hygiene
    wash_body = _haq_item(_("wash and dry your entire body"))
    tub_bath = _haq_item(_("take a tub bath"))
    toilet = _haq_item(_("get on and off the toilet"))
    # Reach
    reach_object = _haq_item(_("reach and get down a 5-lb object from just above your head"))
    bend_down = _haq_item(_("bend down to pick up clothing from the floor"))
    # Grip
    open_car_doors = _haq_item(_("open car doors"))
    open_jars = _haq_item(_("open jars which have been previously opened"))
    turn_faucets = _haq_item(_("turn faucets on and off"))
    # Activities
    errands = _haq_item(_("run errands and shop"))
    car_in_out = _haq_item(_("get in and out of a car"))
    chores = _haq_item(_("do chores such as vacuuming or yard work"))
    # Aids and devices (each raises the category it belongs to, haq.AIDS)
    aid_dressing_devices = _tick(_("devices used for dressing"))
    aid_special_chair = _tick(_("special or built-up chair"))
    aid_built_up_utensils = _tick(_("built-up or special utensils"))
    aid_cane = _tick(_("cane"))
    aid_walker = _tick(_("walker"))
    aid_crutches = _tick(_("crutches"))
    aid_wheelchair = _tick(_("wheelchair"))
    aid_raised_toilet_seat = _tick(_("raised toilet seat"))
    aid_bathtub_seat = _tick(_("bathtub seat"))
    aid_bathtub_bar = _tick(_("bathtub bar"))
    aid_long_handled_bathroom = _tick(_("long-handled appliances in bathroom"))
    aid_long_handled_reach = _tick(_("long-handled appliances for reach"))
    aid_jar_opener = _tick(_("jar opener (for jars previously opened)"))
    aid_other = models.CharField(
        _("other aid or device"),
        max_length=200,
        blank=True,
        help_text=_("Recorded only: it changes no category score."),
    )
    # Help from another person
    help_dressing = _tick(_("help for dressing and grooming"))
    help_arising = _tick(_("help for arising"))
    help_eating = _tick(_("help for eating"))
    help_walking = _tick(_("help for walking"))
    help_hygiene = _tick(_("help for hygiene"))
    help_reach = _tick(_("help for reach"))
    help_grip = _tick(_("help for gripping and opening things"))
    help_activities = _tick(_("help for errands and chores"))
    # Visual analogue scales, integers 0..100: a 100-mm line is read to the millimetre and
    # a slider gives whole steps, so a decimal would only suggest a precision nobody has.
    pain_vas = _vas(_("pain in the past week"))
    global_vas = _vas(_("overall impact of the disease (patient global)"))
    raynaud_vas = _vas(_("Raynaud's phenomenon in the past week"))
    digital_ulcer_vas = _vas(_("finger ulcers in the past week"))
    gi_vas = _vas(_("intestinal problems in the past week"))
    breathing_vas = _vas(_("breathing problems in the past week"))
    disease_severity_vas = _vas(_("overall severity of the scleroderma in the past week"))
    # Derived: full precision, display rounds to 3 decimals.
    di = models.FloatField(
        _("HAQ disability index"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("0..3 with aids and devices; blank with fewer than 6 categories answered."),
    )
    di_without_aids = models.FloatField(
        _("HAQ disability index without aids"), null=True, blank=True, editable=False
    )
    pain_score = _vas_score(_("pain score"))
    global_score = _vas_score(_("patient global score"))
    raynaud_score = _vas_score(_("Raynaud score"))
    digital_ulcer_score = _vas_score(_("digital ulcer score"))
    gi_score = _vas_score(_("gastrointestinal score"))
    breathing_score = _vas_score(_("breathing score"))
    disease_severity_score = _vas_score(_("disease severity score"))

    class Meta:
        verbose_name = _("Health Assessment Questionnaire (with SHAQ)")
        verbose_name_plural = _("Health Assessment Questionnaires (with SHAQ)")
        constraints = [
            *_one_per_visit(),
            *(_range(item, 0, 3) for item in haq.ITEMS),
            *(_range(scale, 0, 100) for scale in haq.VAS_SCALES),
            _range("di", 0, 3),
            _range("di_without_aids", 0, 3),
        ]

    def score(self) -> haq.HaqResult:
        answers = {key: getattr(self, key) for key in haq.KEYS}
        answers[haq.AID_OTHER] = self.aid_other or None
        return haq.score(answers)

    def compute_derived(self) -> None:
        try:
            result = self.score()
        except ScoringInputError:
            # Refused by the field validators and the database checks; let them report.
            self.di = self.di_without_aids = None
            for field in self.VAS_SCORES:
                setattr(self, field, None)
            return
        self.di = result.di
        self.di_without_aids = result.di_without_aids
        scores = {"pain_vas": result.pain, "global_vas": result.global_, **result.shaq}
        for field, scale in self.VAS_SCORES.items():
            setattr(self, field, scores[scale])


@pghistory.track()
class DrugDispensing(CrfBase):
    FORM_CODE = "drug_dispensing"
    REQUIRED_FIELDS = ("kit_number", "dispensing_date", "units_dispensed", "expected_units_per_day")

    kit_number = models.CharField(
        _("kit number"), max_length=32, blank=True, help_text=_("As printed on the kit.")
    )
    # `date` in crf-spec.md: renamed so it never shadows the type.
    dispensing_date = models.DateField(_("date of dispensing"), null=True, blank=True)
    units_dispensed = models.PositiveSmallIntegerField(
        _("units dispensed"),
        null=True,
        blank=True,
        help_text=_("Capsules or tablets in the kit handed to the patient."),
    )
    expected_units_per_day = models.PositiveSmallIntegerField(
        _("expected units per day"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Units the patient should take each day (imatinib 400 mg/day)."),
    )

    class Meta:
        verbose_name = _("drug dispensing")
        verbose_name_plural = _("drug dispensings")
        constraints = [
            *_one_per_visit(),
            _range("expected_units_per_day", 1),
        ]

    def name_detail(self) -> str:
        return f" kit {self.kit_number}" if self.kit_number else ""

    @classmethod
    def initial_values(cls, patient) -> dict:
        kit = allocated_kit(patient)
        return {"kit_number": kit} if kit else {}

    def context_problems(self) -> dict[str, str]:
        if not self.kit_number or not _kits_concealed(self.patient):
            return {}
        kit = allocated_kit(self.patient)
        label = _label(DrugDispensing, "kit_number")
        if kit is None:
            return {
                "kit_number": _(
                    "%(field)s: no kit is allocated to this patient yet; randomise them first."
                )
                % {"field": label}
            }
        if self.kit_number != kit:
            return {
                "kit_number": _(
                    "%(field)s: %(typed)s is not this patient's kit; the kit allocated to them "
                    "is %(kit)s."
                )
                % {"field": label, "typed": self.kit_number, "kit": kit}
            }
        return {}


def _kits_concealed(patient) -> bool:
    randomisation = patient.protocol_version.protocol.randomisation
    return randomisation is not None and randomisation.concealment == "kit_number"


def allocated_kit(patient) -> str | None:
    """The kit number of the patient's allocation: the number only, never the arm."""
    return Allocation.objects.filter(patient=patient).values_list("kit_number", flat=True).first()


def dispensed_kits(patient) -> list[str]:
    """The kit numbers dispensed to the patient, first dispensed first."""
    kits = (
        DrugDispensing.objects.filter(patient=patient)
        .exclude(kit_number="")
        .order_by("dispensing_date", "pk")
        .values_list("kit_number", flat=True)
    )
    return list(dict.fromkeys(kits))


def compute_compliance_pct(
    *,
    units_dispensed: int | None,
    units_returned: int | None,
    expected_units_per_day: int | None,
    days: int | None,
) -> float | None:
    """Units taken as a percentage of the units prescribed since dispensing.

    ``100 × (units_dispensed − units_returned) / (expected_units_per_day × days)``, where
    ``days`` counts from the dispensing date to the accountability date (the dispensing day
    is a dosing day, the count day is not). Rounded to 0.1; above 100 when the patient took
    more than prescribed. ``None`` when an input is missing or no day has passed.
    """
    inputs = (units_dispensed, units_returned, expected_units_per_day, days)
    if any(value is None for value in inputs) or days <= 0 or expected_units_per_day <= 0:
        return None
    taken = units_dispensed - units_returned
    return round(100 * taken / (expected_units_per_day * days), 1)


@pghistory.track()
class DrugAccountability(CrfBase):
    FORM_CODE = "drug_accountability"
    REQUIRED_FIELDS = ("kit_number", "accountability_date", "units_dispensed", "units_returned")

    kit_number = models.CharField(
        _("kit number"), max_length=32, blank=True, help_text=_("As printed on the kit.")
    )
    accountability_date = models.DateField(
        _("date of count"), null=True, blank=True, help_text=_("Date the units were counted.")
    )
    units_dispensed = models.PositiveSmallIntegerField(
        _("units dispensed"),
        null=True,
        blank=True,
        help_text=_("Units in the kit when handed out."),
    )
    units_returned = models.PositiveSmallIntegerField(
        _("units returned"),
        null=True,
        blank=True,
        help_text=_("Units brought back (not taken) at this count."),
    )
    compliance_pct = models.FloatField(
        _("compliance (%)"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Units taken / units prescribed since dispensing × 100."),
    )

    class Meta:
        verbose_name = _("drug accountability")
        verbose_name_plural = _("drug accountabilities")
        constraints = [
            *_one_per_visit(),
            models.CheckConstraint(
                condition=Q(units_returned__lte=models.F("units_dispensed")),
                name="%(class)s_units_returned_range",
                violation_error_message=_("More units returned than dispensed."),
            ),
            _range("compliance_pct", 0),
        ]

    def name_detail(self) -> str:
        return f" kit {self.kit_number}" if self.kit_number else ""

    def clean(self) -> None:
        counts = (self.units_returned, self.units_dispensed)
        # A count the field refused (clean_fields) is not compared: its own error says it.
        if all(isinstance(n, int) for n in counts) and self.units_returned > self.units_dispensed:
            raise ValidationError(
                {
                    "units_returned": _("At most the %(n)s units dispensed.")
                    % {"n": self.units_dispensed}
                }
            )

    @classmethod
    def initial_values(cls, patient) -> dict:
        kits = dispensed_kits(patient)
        return {"kit_number": kits[0]} if len(kits) == 1 else {}

    def context_problems(self) -> dict[str, str]:
        if not self.kit_number:
            return {}
        kits = dispensed_kits(self.patient)
        label = _label(DrugAccountability, "kit_number")
        if not kits:
            return {
                "kit_number": _(
                    "%(field)s: no kit has been dispensed to this patient yet; record the "
                    "drug dispensing first."
                )
                % {"field": label}
            }
        if self.kit_number not in kits:
            return {
                "kit_number": _(
                    "%(field)s: %(typed)s was not dispensed to this patient; kits dispensed "
                    "to them: %(kits)s."
                )
                % {"field": label, "typed": self.kit_number, "kits": ", ".join(kits)}
            }
        return {}

    def dispensing(self) -> DrugDispensing | None:
        """The dispensing of this kit to this patient on or before the count."""
        if not self.kit_number or self.accountability_date is None:
            return None
        return (
            DrugDispensing.objects.filter(
                patient_id=self.patient_id,
                kit_number=self.kit_number,
                dispensing_date__lte=self.accountability_date,
            )
            .order_by("-dispensing_date")
            .first()
        )

    def compute_derived(self) -> None:
        # The dispensing date and the daily dose belong to the dispensing form of the same
        # kit; until that form exists (or when it is corrected later and this one is not
        # saved again) the compliance is blank or stale, never guessed.
        dispensing = self.dispensing()
        if dispensing is None or dispensing.dispensing_date is None:
            self.compliance_pct = None
            return
        days = (self.accountability_date - dispensing.dispensing_date).days
        self.compliance_pct = compute_compliance_pct(
            units_dispensed=self.units_dispensed,
            units_returned=self.units_returned,
            expected_units_per_day=dispensing.expected_units_per_day,
            days=days,
        )
        if self.compliance_pct is not None and self.compliance_pct < 0:
            # Only with more returned than dispensed, which the database refuses anyway.
            self.compliance_pct = None


# -- study 2 (NCT04206644, Sclero-JAK) ----------------------------------------------------


class SscSubset(models.TextChoices):
    DIFFUSE = "diffuse", _("Diffuse cutaneous")
    LIMITED = "limited", _("Limited cutaneous")


class DigitalUlcers(models.TextChoices):
    NEVER = "never", _("Never")
    PAST = "past", _("Past")
    CURRENT = "current", _("Current")


@pghistory.track()
class ClinicalCharacteristics(CrfBase):
    FORM_CODE = "clinical_characteristics"
    # SSc subset and mRSS do not apply to the SLE group, so they are not required here; the
    # protocol can require them for the SSC group.
    REQUIRED_FIELDS = (
        "anti_centromere",
        "anti_topoisomerase",
        "anti_rna_pol3",
        "digital_ulcers",
        "ild_on_ct",
        "pah_on_echo",
        "disease_duration_years",
    )

    ssc_subset = models.CharField(
        _("SSc subset"),
        max_length=7,
        choices=SscSubset.choices,
        blank=True,
        help_text=_("Systemic sclerosis patients only."),
    )
    # "None of them" is all three answered no.
    anti_centromere = _yes_no(_("anti-centromere antibodies"))
    anti_topoisomerase = _yes_no(_("anti-topoisomerase I (Scl-70) antibodies"))
    anti_rna_pol3 = _yes_no(_("anti-RNA polymerase III antibodies"))
    mrss_total = _int(
        _("modified Rodnan skin score"), 0, 51, help_text=_("Total 0..51, as last assessed.")
    )
    digital_ulcers = models.CharField(
        _("digital ulcers"), max_length=7, choices=DigitalUlcers.choices, blank=True
    )
    ild_on_ct = _yes_no(_("interstitial lung disease on CT scan"))
    pah_on_echo = _yes_no(_("pulmonary arterial hypertension suspected on echocardiography"))
    disease_duration_years = _measure(
        _("disease duration (years)"),
        3,
        1,
        help_text=_("Years since the first symptom other than Raynaud's phenomenon."),
        high=99,
    )

    class Meta:
        verbose_name = _("clinical characteristics")
        verbose_name_plural = _("clinical characteristics")
        constraints = [
            *_one_per_visit(),
            _one_of("ssc_subset", SscSubset.choices),
            _range("mrss_total", 0, 51),
            _one_of("digital_ulcers", DigitalUlcers.choices),
            _range("disease_duration_years", 0, 99),
        ]


class SscStatus(models.TextChoices):
    CLASSIFIED = "classified", _("Classified as SSc")
    NOT_CLASSIFIED = "not_classified", _("Not classified")
    NOT_APPLICABLE = "not_applicable", _("Criteria not applicable")


@pghistory.track()
class SscClassification(CrfBase):
    FORM_CODE = "ssc_classification"
    # Every finding answered yes or no: "not recorded" would silently count as absent.
    REQUIRED_FIELDS = ssc2013.KEYS
    LIVE_TOTAL = ("points", "classification")

    skin_thickening_proximal_mcp = _yes_no(
        _("skin thickening of the fingers of both hands extending proximal to the MCP joints"),
        help_text=_("Sufficient on its own to classify."),
    )
    puffy_fingers = _yes_no(_("puffy fingers"))
    sclerodactyly = _yes_no(_("sclerodactyly of the fingers (distal to the MCP joints)"))
    digital_tip_ulcers = _yes_no(_("digital tip ulcers"))
    fingertip_pitting_scars = _yes_no(_("fingertip pitting scars"))
    telangiectasia = _yes_no(_("telangiectasia"))
    abnormal_nailfold_capillaries = _yes_no(_("abnormal nailfold capillaries"))
    pah = _yes_no(_("pulmonary arterial hypertension"))
    ild = _yes_no(_("interstitial lung disease"))
    raynaud = _yes_no(_("Raynaud's phenomenon"))
    anti_centromere = _yes_no(_("anti-centromere antibodies"))
    anti_topoisomerase = _yes_no(_("anti-topoisomerase I (Scl-70) antibodies"))
    anti_rna_pol3 = _yes_no(_("anti-RNA polymerase III antibodies"))
    fingers_spared = _yes_no(
        _("skin thickening sparing the fingers"),
        help_text=_("Yes makes the criteria not applicable."),
    )
    better_explained_by_other_disorder = _yes_no(
        _("findings better explained by a scleroderma-like disorder"),
        help_text=_("Yes makes the criteria not applicable."),
    )
    points = models.PositiveSmallIntegerField(
        _("points (items 2 to 8)"), null=True, blank=True, editable=False
    )
    sufficient = models.BooleanField(
        _("item 1 present (sufficient)"), null=True, blank=True, editable=False
    )
    classification = models.CharField(
        _("classification"), max_length=16, choices=SscStatus.choices, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("ACR/EULAR 2013 classification of systemic sclerosis")
        verbose_name_plural = _("ACR/EULAR 2013 classifications of systemic sclerosis")
        constraints = [
            *_one_per_visit(),
            _range("points", 0, ssc2013.MAX_POINTS),
        ]

    @property
    def classified(self) -> bool | None:
        """True or False; None when the criteria do not apply."""
        if self.classification == SscStatus.NOT_APPLICABLE:
            return None
        return self.classification == SscStatus.CLASSIFIED

    def score(self) -> ssc2013.Ssc2013Result:
        return ssc2013.score({key: getattr(self, key) for key in ssc2013.KEYS})

    def compute_derived(self) -> None:
        try:
            result = self.score()
        except ScoringInputError:
            # Only a non-boolean that bypassed the form; saving stores it as the database
            # casts it, and the next save scores it.
            self.points, self.sufficient, self.classification = None, None, ""
            return
        self.points = result.points
        self.sufficient = result.sufficient
        self.classification = result.status


class SleStatus(models.TextChoices):
    CLASSIFIED = "classified", _("Classified as SLE")
    NOT_CLASSIFIED = "not_classified", _("Not classified")
    ENTRY_CRITERION_NOT_MET = "entry_criterion_not_met", _("Entry criterion (ANA) not met")


@pghistory.track()
class SleClassification(CrfBase):
    FORM_CODE = "sle_classification"
    REQUIRED_FIELDS = sle2019.KEYS
    LIVE_TOTAL = ("points", "classification")

    ana_positive = _yes_no(
        _("ANA at a titre of at least 1:80 on HEp-2 cells (or equivalent), at least once"),
        help_text=_("Entry criterion: without it the criteria do not apply."),
    )
    fever = _yes_no(_("fever"))
    leukopenia = _yes_no(_("leukopenia"))
    thrombocytopenia = _yes_no(_("thrombocytopenia"))
    autoimmune_hemolysis = _yes_no(_("autoimmune hemolysis"))
    delirium = _yes_no(_("delirium"))
    psychosis = _yes_no(_("psychosis"))
    seizure = _yes_no(_("seizure"))
    alopecia = _yes_no(_("non-scarring alopecia"))
    oral_ulcers = _yes_no(_("oral ulcers"))
    subacute_or_discoid_lupus = _yes_no(_("subacute cutaneous or discoid lupus"))
    acute_cutaneous_lupus = _yes_no(_("acute cutaneous lupus"))
    pleural_or_pericardial_effusion = _yes_no(_("pleural or pericardial effusion"))
    acute_pericarditis = _yes_no(_("acute pericarditis"))
    joint_involvement = _yes_no(_("joint involvement"))
    proteinuria = _yes_no(_("proteinuria > 0.5 g/24 h"))
    lupus_nephritis_class_2_or_5 = _yes_no(_("renal biopsy: class II or V lupus nephritis"))
    lupus_nephritis_class_3_or_4 = _yes_no(_("renal biopsy: class III or IV lupus nephritis"))
    antiphospholipid = _yes_no(_("antiphospholipid antibodies"))
    low_c3 = _yes_no(_("low C3"))
    low_c4 = _yes_no(_("low C4"))
    anti_dsdna = _yes_no(_("anti-dsDNA antibodies"))
    anti_smith = _yes_no(_("anti-Smith antibodies"))
    points = models.PositiveSmallIntegerField(
        _("points"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Blank when the entry criterion is not met."),
    )
    has_clinical = models.BooleanField(
        _("at least one clinical criterion"), null=True, blank=True, editable=False
    )
    classification = models.CharField(
        _("classification"), max_length=24, choices=SleStatus.choices, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("EULAR/ACR 2019 classification of systemic lupus")
        verbose_name_plural = _("EULAR/ACR 2019 classifications of systemic lupus")
        constraints = [
            *_one_per_visit(),
            _range("points", 0, sle2019.MAX_POINTS),
        ]

    @property
    def classified(self) -> bool:
        return self.classification == SleStatus.CLASSIFIED

    def missing_fields(self) -> list[str]:
        if self.ana_positive is False:
            return []  # without the entry criterion the other findings do not matter
        return super().missing_fields()

    def score(self) -> sle2019.Sle2019Result:
        return sle2019.score({key: getattr(self, key) for key in sle2019.KEYS})

    def compute_derived(self) -> None:
        try:
            result = self.score()
        except ScoringInputError:
            # As for the SSc criteria: only a non-boolean that bypassed the form.
            self.points, self.has_clinical, self.classification = None, None, ""
            return
        self.points = result.points
        self.has_clinical = result.has_clinical
        self.classification = result.status


@pghistory.track()
class BloodSample(CrfBase):
    FORM_CODE = "blood_sample"
    REQUIRED_FIELDS = ("sample_date", "serum_aliquots", "pbmc_isolated")

    sample_date = models.DateField(_("date of sample"), null=True, blank=True)
    serum_aliquots = models.PositiveSmallIntegerField(
        _("serum aliquots stored"), null=True, blank=True
    )
    pbmc_isolated = _yes_no(_("PBMC isolated"))

    class Meta:
        verbose_name = _("blood sample")
        verbose_name_plural = _("blood samples")
        constraints = [*_one_per_visit()]


class CultureCondition(models.TextChoices):
    UNTREATED = "untreated", _("Untreated")
    RUXOLITINIB = "ruxolitinib", _("Ruxolitinib")
    HD_SERUM_UNTREATED = "hd_serum_untreated", _("Healthy donor MDM + SSc serum, untreated")
    HD_SERUM_RUXOLITINIB = "hd_serum_ruxolitinib", _("Healthy donor MDM + SSc serum, ruxolitinib")


# Healthy donors' macrophages are cultured in a named SSc participant's serum.
SERUM_CONDITIONS = (CultureCondition.HD_SERUM_UNTREATED, CultureCondition.HD_SERUM_RUXOLITINIB)
RUXOLITINIB_CONDITIONS = (CultureCondition.RUXOLITINIB, CultureCondition.HD_SERUM_RUXOLITINIB)


def _condition() -> models.CharField:
    # Part of the unique key of the form: a blank is never valid.
    return models.CharField(_("culture condition"), max_length=20, choices=CultureCondition.choices)


def _serum_donor() -> models.ForeignKey:
    return models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("serum donor"),
        help_text=_("Healthy donor conditions: the SSc participant whose serum was used."),
    )


def _culture_constraints() -> list[models.BaseConstraint]:
    return [
        *_one_per_visit("condition"),
        _one_of("condition", CultureCondition.choices, blank=False),
        models.CheckConstraint(
            condition=Q(condition__in=SERUM_CONDITIONS) | Q(serum_donor__isnull=True),
            name="%(class)s_serum_donor_hd_only",
            violation_error_message=_("A serum donor is named for healthy donor conditions only."),
        ),
        models.CheckConstraint(
            condition=~Q(serum_donor=models.F("patient")),
            name="%(class)s_serum_donor_not_self",
            violation_error_message=_("The serum donor is another participant."),
        ),
    ]


def _culture_missing(crf: MdmCytokines | MdmFlow) -> list[str]:
    if crf.condition in SERUM_CONDITIONS and crf.serum_donor_id is None:
        return ["serum_donor"]
    return []


def _laboratory(patient):
    return patient.protocol_version.protocol.laboratory


def required_conditions(patient) -> tuple[str, ...]:
    """The culture conditions the participant's group needs, for each culture form."""
    laboratory = _laboratory(patient)
    return laboratory.conditions_for(patient.group) if laboratory else ()


def culture_conditions(patient) -> tuple[str, ...]:
    """The conditions a participant may be cultured in: their group's (every one when the
    protocol has no laboratory section to say)."""
    if _laboratory(patient) is None:
        return tuple(CultureCondition.values)
    return required_conditions(patient)


def serum_donors(patient):
    """The participants whose serum may culture this participant's macrophages: of the
    study, of the protocol's serum donor groups (SSc), never the participant."""
    donors = Patient.objects.filter(study_id=patient.study_id).exclude(pk=patient.pk)
    laboratory = _laboratory(patient)
    if laboratory is not None:
        donors = donors.filter(group__in=laboratory.serum_donor_groups)
    return donors


def _group_label(protocol, code: str) -> str:
    return next((g.label for g in protocol.groups if g.code == code), code)


def condition_message(patient) -> str:
    """Why a condition outside the participant's group is refused, naming the right ones."""
    group = _group_label(patient.protocol_version.protocol, patient.group)
    allowed = culture_conditions(patient)
    if not allowed:
        return _("Culture condition: the protocol has no culture for the group “%(group)s”.") % {
            "group": group
        }
    return _("Culture condition: for the group “%(group)s”, choose %(allowed)s.") % {
        "group": group,
        "allowed": ", ".join(f"“{CultureCondition(code).label}”" for code in allowed),
    }


def serum_donor_message(patient) -> str:
    protocol = patient.protocol_version.protocol
    laboratory = _laboratory(patient)
    groups = laboratory.serum_donor_groups if laboratory else ()
    if not groups:
        return _("Serum donor: choose another participant of this study.")
    names = ", ".join(f"“{_group_label(protocol, code)}”" for code in groups)
    return _(
        "Serum donor: choose another participant of this study, from the group %(groups)s."
    ) % {"groups": names}


class _CultureRules:
    """The rules the two culture forms share: what the participant's group is cultured in,
    whose serum, when the results can be dated, and when the visit has them all."""

    # "This visit already has … for the … condition": one sentence per form, to translate.
    DUPLICATE_MESSAGE: ClassVar = ""
    # One result per condition: the condition is the instance's key in the form index, where
    # visit completion looks for one complete result per condition the group needs.
    INDEX_KEY: ClassVar[str] = "condition"

    def duplicate_message(self) -> str:
        return self.DUPLICATE_MESSAGE % {"condition": self.get_condition_display()}

    def name_detail(self) -> str:
        return f" {self.condition}"

    def unique_error_message(self, model_class, unique_check):
        # The database's refusal of a second instance of a condition (two saves racing).
        if tuple(unique_check) == ("visit", "condition"):
            return ValidationError(self.duplicate_message(), code="unique_together")
        return super().unique_error_message(model_class, unique_check)

    def context_problems(self) -> dict[str, str]:
        problems = {}
        patient = self.patient
        if self.condition and self.condition not in culture_conditions(patient):
            problems["condition"] = condition_message(patient)
        elif (
            self.condition
            and type(self)
            .objects.filter(visit_id=self.visit_id, condition=self.condition)
            .exclude(pk=self.pk)
            .exists()
        ):
            problems["condition"] = self.duplicate_message()
        if (
            self.serum_donor_id is not None
            and not serum_donors(patient).filter(pk=self.serum_donor_id).exists()
        ):
            problems["serum_donor"] = serum_donor_message(patient)
        dated = self._date_problem()
        if dated:
            problems[NON_FIELD_ERRORS] = dated
        return problems

    def _date_problem(self) -> str | None:
        """Results are dated by their visit, which follows the blood sample by the culture."""
        visit = self.visit
        spec = self.patient.protocol_version.protocol.visit(visit.code)
        if visit.visit_date is None or spec.after_visit is None:
            return None
        sampled = (
            BloodSample.objects.filter(
                patient=self.patient, visit__code=spec.after_visit, sample_date__isnull=False
            )
            .values_list("sample_date", flat=True)
            .first()
        )
        if sampled is None:
            sampled = (
                visit.patient.visits.filter(code=spec.after_visit)
                .values_list("visit_date", flat=True)
                .first()
            )
        if sampled is None:
            return None
        laboratory = _laboratory(self.patient)
        min_days = laboratory.culture_min_days if laboratory else 0
        values = {
            "visit": visit.code,
            "date": date_format(visit.visit_date, "SHORT_DATE_FORMAT"),
            "sample": date_format(sampled, "SHORT_DATE_FORMAT"),
            "days": min_days,
        }
        if visit.visit_date < sampled:
            return (
                _(
                    "The results are dated %(date)s, the date of visit %(visit)s: before the "
                    "blood sample of %(sample)s. Correct the date of visit %(visit)s."
                )
                % values
            )
        if (visit.visit_date - sampled).days < min_days:
            return (
                ngettext(
                    "The results are dated %(date)s, the date of visit %(visit)s, but the "
                    "culture of the blood sample of %(sample)s takes at least %(days)d day. "
                    "Correct the date of visit %(visit)s.",
                    "The results are dated %(date)s, the date of visit %(visit)s, but the "
                    "culture of the blood sample of %(sample)s takes at least %(days)d days. "
                    "Correct the date of visit %(visit)s.",
                    min_days,
                )
                % values
            )
        return None


def _pg_ml(label) -> models.DecimalField:
    return _measure(label, 12, 2, help_text=_("pg/mL; blank and ticked below when under the LOD."))


def _below_lod(label) -> models.BooleanField:
    return _tick(label, help_text=_("Tick instead of entering 0 when under the assay's LOD."))


def _lod(label) -> models.DecimalField:
    return _measure(label, 12, 2, help_text=_("The assay's limit of detection, pg/mL."))


# Each cytokine has `<cytokine>_pg_ml`, `<cytokine>_below_lod` and `<cytokine>_lod_pg_ml`.
CYTOKINES = ("ccl18", "pdgfbb", "il6", "cxcl10", "cxcl4")


@pghistory.track()
class MdmCytokines(_CultureRules, CrfBase):
    FORM_CODE = "mdm_cytokines"
    DUPLICATE_MESSAGE = _(
        "This visit already has cytokine results for the %(condition)s condition: "
        "open that one to change it."
    )
    # Analytes are complete with a value or "below LOD": see missing_fields().
    REQUIRED_FIELDS = ("condition",)

    condition = _condition()
    serum_donor = _serum_donor()
    ruxolitinib_nm = _measure(
        _("ruxolitinib concentration (nM)"), 8, 1, help_text=_("Ruxolitinib conditions only.")
    )
    ccl18_pg_ml = _pg_ml(_("CCL18 (pg/mL)"))
    ccl18_below_lod = _below_lod(_("CCL18 below the limit of detection"))
    ccl18_lod_pg_ml = _lod(_("CCL18 limit of detection (pg/mL)"))
    pdgfbb_pg_ml = _pg_ml(_("PDGF-BB (pg/mL)"))
    pdgfbb_below_lod = _below_lod(_("PDGF-BB below the limit of detection"))
    pdgfbb_lod_pg_ml = _lod(_("PDGF-BB limit of detection (pg/mL)"))
    il6_pg_ml = _pg_ml(_("IL-6 (pg/mL)"))
    il6_below_lod = _below_lod(_("IL-6 below the limit of detection"))
    il6_lod_pg_ml = _lod(_("IL-6 limit of detection (pg/mL)"))
    cxcl10_pg_ml = _pg_ml(_("CXCL10 (pg/mL)"))
    cxcl10_below_lod = _below_lod(_("CXCL10 below the limit of detection"))
    cxcl10_lod_pg_ml = _lod(_("CXCL10 limit of detection (pg/mL)"))
    cxcl4_pg_ml = _pg_ml(_("CXCL4 (pg/mL)"))
    cxcl4_below_lod = _below_lod(_("CXCL4 below the limit of detection"))
    cxcl4_lod_pg_ml = _lod(_("CXCL4 limit of detection (pg/mL)"))

    class Meta:
        verbose_name = _("MDM cytokines (ELISA)")
        verbose_name_plural = _("MDM cytokines (ELISA)")
        constraints = [
            *_culture_constraints(),
            _range("ruxolitinib_nm", 0),
            models.CheckConstraint(
                condition=Q(condition__in=RUXOLITINIB_CONDITIONS) | Q(ruxolitinib_nm__isnull=True),
                name="%(class)s_ruxolitinib_nm_treated_only",
                violation_error_message=_("A ruxolitinib concentration is for treated conditions."),
            ),
            *(_range(f"{name}_pg_ml", 0) for name in CYTOKINES),
            *(_range(f"{name}_lod_pg_ml", 0) for name in CYTOKINES),
            # Below the LOD is a result of its own, never a 0 or a number.
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{name}_below_lod": False})
                    | Q(**{f"{name}_pg_ml__isnull": True}),
                    name=f"%(class)s_{name}_below_lod",
                    violation_error_message=_("A value below the LOD is ticked, not entered."),
                )
                for name in CYTOKINES
            ),
        ]

    def missing_fields(self) -> list[str]:
        missing = super().missing_fields() + _culture_missing(self)
        if self.condition in RUXOLITINIB_CONDITIONS and self.ruxolitinib_nm is None:
            missing.append("ruxolitinib_nm")
        for name in CYTOKINES:
            below_lod = getattr(self, f"{name}_below_lod")
            if getattr(self, f"{name}_pg_ml") is None and not below_lod:
                missing.append(f"{name}_pg_ml")
            elif below_lod and getattr(self, f"{name}_lod_pg_ml") is None:
                missing.append(f"{name}_lod_pg_ml")
        return missing


def _pos_pct(label) -> models.DecimalField:
    return _measure(label, 5, 2, help_text=_("Percent of live macrophages, 0 to 100."), high=100)


def _mfi(label) -> models.DecimalField:
    return _measure(label, 10, 1, help_text=_("Median fluorescence intensity."))


# Each marker has `<marker>_pos_pct` and `<marker>_mfi`.
FLOW_MARKERS = ("cd204", "cd206", "cd163", "cd86", "hla_dr", "tlr4")


@pghistory.track()
class MdmFlow(_CultureRules, CrfBase):
    FORM_CODE = "mdm_flow"
    DUPLICATE_MESSAGE = _(
        "This visit already has flow cytometry results for the %(condition)s condition: "
        "open that one to change it."
    )
    REQUIRED_FIELDS = (
        "condition",
        *(f"{marker}_{measure}" for marker in FLOW_MARKERS for measure in ("pos_pct", "mfi")),
    )

    condition = _condition()
    serum_donor = _serum_donor()
    cd204_pos_pct = _pos_pct(_("CD204+ cells (%)"))
    cd204_mfi = _mfi(_("CD204 MFI"))
    cd206_pos_pct = _pos_pct(_("CD206+ cells (%)"))
    cd206_mfi = _mfi(_("CD206 MFI"))
    cd163_pos_pct = _pos_pct(_("CD163+ cells (%)"))
    cd163_mfi = _mfi(_("CD163 MFI"))
    cd86_pos_pct = _pos_pct(_("CD86+ cells (%)"))
    cd86_mfi = _mfi(_("CD86 MFI"))
    hla_dr_pos_pct = _pos_pct(_("HLA-DR (MHC class II)+ cells (%)"))
    hla_dr_mfi = _mfi(_("HLA-DR (MHC class II) MFI"))
    tlr4_pos_pct = _pos_pct(_("TLR4+ cells (%)"))
    tlr4_mfi = _mfi(_("TLR4 MFI"))

    class Meta:
        verbose_name = _("MDM flow cytometry")
        verbose_name_plural = _("MDM flow cytometry")
        constraints = [
            *_culture_constraints(),
            *(_range(f"{marker}_pos_pct", 0, 100) for marker in FLOW_MARKERS),
            *(_range(f"{marker}_mfi", 0) for marker in FLOW_MARKERS),
        ]

    def missing_fields(self) -> list[str]:
        return super().missing_fields() + _culture_missing(self)


# -- the registry: one model per form code ----------------------------------------------------


def _crf_models(base: type[CrfBase] = CrfBase) -> list[type[CrfBase]]:
    """The concrete CRF models, in the order they are defined."""
    found = []
    for model in base.__subclasses__():
        if not model._meta.abstract:
            found.append(model)
        found += _crf_models(model)
    return found


# Every CRF model, found from the classes: a new form is one model here and one line in a
# protocol file. crfs/checks.py checks at startup that each code is one model's and that
# the protocol files name no form without a model, nor a model no protocol uses.
CRF_MODELS: tuple[type[CrfBase], ...] = tuple(_crf_models())
# Built once: a constant, not a registry anyone can add to at run time.
FORM_MODELS: Mapping[str, type[CrfBase]] = MappingProxyType(
    {model.FORM_CODE: model for model in CRF_MODELS}
)

for _model in CRF_MODELS:
    for _field in _model._meta.concrete_fields:
        if _field.choices:
            # Django's "Value 4 is not a valid choice." names neither the field nor what it
            # takes: the form's sentence, for whoever calls crf_save.
            _field.error_messages["invalid_choice"] = choice_message(_field)


def form_model(code: str) -> type[CrfBase]:
    """The model of a protocol form code; KeyError for a code no model implements."""
    try:
        return FORM_MODELS[code]
    except KeyError:
        raise KeyError(f"no case report form model for {code!r}") from None
