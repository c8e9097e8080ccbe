"""The schema of a study's protocol file (ecrf/studies/protocols/<registration number>.yaml).

A protocol file is the single place where a study's visits, windows, forms per visit,
eligibility checks and project decisions live, so that a protocol amendment is a reviewed
change to a file under version control, never a change to code. The schema is strict
(unknown keys are errors) because a misspelt key silently ignored is a protocol rule
silently dropped.

Conventions the files rely on:

- Days count from day 0, the inclusion (randomisation) date; exactly one scheduled visit
  has ``target_day: 0`` and it defines day 0.
- A visit's timing is one of:
    * ``kind: scheduled`` with ``target_day`` and ``window_before_days`` /
      ``window_after_days`` (both >= 0, default 0): allowed days are
      ``target_day - before .. target_day + after``;
    * ``kind: scheduled`` with ``day_range: {min: -28, max: -1}`` for a visit that has an
      allowed span but no target (screening);
    * ``kind: unscheduled``: no timing, may happen any time (usually ``repeatable``);
    * ``kind: follow_on`` with ``after_visit: V0``: done after that visit, no window.
  Scheduled visits are listed in chronological order and their allowed spans never overlap,
  so a visit date identifies at most one scheduled visit.
- Eligibility checks state the condition the data must meet for the patient to be
  ELIGIBLE, for inclusion and exclusion criteria alike. The checklist answer that goes
  with eligibility is "yes" for an inclusion criterion and "no" for an exclusion one, so
  a check that passes expects "yes" on an inclusion line and "no" on an exclusion line.
  A criterion with several checks is satisfied when all checks that apply to the
  patient's group pass.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections import Counter
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from django.apps import apps
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError


@functools.cache
def form_codes() -> frozenset[str]:
    """The forms the code implements: the codes the installed models declare (FORM_CODE).

    A protocol picks among them; it cannot invent one, because each form is a Django model
    with its own fields and rules. Read from Django's app registry, so that studies needs
    none of the apps that implement forms (crfs, safety), which all come after it; a new
    form is one model and one line in a protocol file (crfs checks both ways at startup).
    """
    return frozenset(
        code for model in apps.get_models() if (code := getattr(model, "FORM_CODE", ""))
    )


# Forms that record whether a participant meets a classification (scoring.md §4, §5).
CLASSIFICATION_FORMS = frozenset({"ssc_classification", "sle_classification"})
# The measurements of the safety_labs form that checks and alerts may name.
LAB_ANALYTES = frozenset(
    {
        "hemoglobin_g_dl",
        "neutrophils_x10e9_l",
        "platelets_x10e9_l",
        "bilirubin_umol_l",
        "ast_u_l",
        "alt_u_l",
        "creatinine_umol_l",
    }
)
# Analytes that are recorded with an upper normal limit (`<analyte>_uln`).
ULN_ANALYTES = frozenset({"bilirubin_umol_l", "ast_u_l", "alt_u_l", "creatinine_umol_l"})
# The culture conditions of the MDM forms (ecrf/crfs/models.py, CultureCondition), and those
# that culture healthy donors' macrophages in a named participant's serum.
CULTURE_CONDITIONS = frozenset(
    {"untreated", "ruxolitinib", "hd_serum_untreated", "hd_serum_ruxolitinib"}
)
SERUM_CULTURE_CONDITIONS = frozenset({"hd_serum_untreated", "hd_serum_ruxolitinib"})
CULTURE_FORMS = frozenset({"mdm_cytokines", "mdm_flow"})

_PROBLEMS = "protocol_problems"


# -- errors -------------------------------------------------------------------------------


class ProtocolError(Exception):
    """A protocol file that cannot be loaded; one "<file>: <place>: <problem>" line per problem.

    It carries every problem found, not only the first, so one edit-and-reload cycle fixes
    a file instead of one per mistake.
    """

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = tuple(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(
            f"{self.source}: {place}: {problem}" if place else f"{self.source}: {problem}"
            for place, problem in self.problems
        )


class _Problems:
    """Collects cross-field problems with their place, then reports them all at once.

    Pydantic cannot attach a location to an error raised by a model validator, so the
    places travel in the error's context and `ProtocolError` unfolds them.
    """

    def __init__(self) -> None:
        self.items: list[tuple[tuple, str]] = []

    def add(self, loc: tuple, message: str) -> None:
        self.items.append((loc, message))

    def raise_if_any(self) -> None:
        if self.items:
            summary = "; ".join(
                f"{_place(loc)}: {message}" if loc else message for loc, message in self.items
            )
            raise PydanticCustomError(
                _PROBLEMS, "{summary}", {"summary": summary, "problems": tuple(self.items)}
            )


def _place(loc: tuple) -> str:
    place = ""
    for part in loc:
        if isinstance(part, int):
            place += f"[{part}]"
        else:
            place += f".{part}" if place else str(part)
    return place


def _known(code: str, known: frozenset[str] | set[str], noun: str) -> str:
    close = difflib.get_close_matches(code, known, n=1)
    hint = f", did you mean {close[0]!r}?" if close else ""
    return f"unknown {noun} {code!r}{hint} (known: {', '.join(sorted(known))})"


# -- reusable field types --------------------------------------------------------------------


def _form_code(code: str) -> str:
    if code not in form_codes():
        raise PydanticCustomError("unknown_form", _known(code, form_codes(), "form"))
    return code


def _analyte(code: str) -> str:
    if code not in LAB_ANALYTES:
        raise PydanticCustomError("unknown_analyte", _known(code, LAB_ANALYTES, "analyte"))
    return code


def _uln_analyte(code: str) -> str:
    if code not in ULN_ANALYTES:
        raise PydanticCustomError(
            "no_uln",
            f"{code!r} has no upper normal limit (analytes with one: "
            f"{', '.join(sorted(ULN_ANALYTES))})",
        )
    return code


def _culture_condition(code: str) -> str:
    if code not in CULTURE_CONDITIONS:
        raise PydanticCustomError(
            "unknown_culture_condition", _known(code, CULTURE_CONDITIONS, "culture condition")
        )
    return code


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "unknown_time_zone", f"unknown time zone {name!r} (e.g. Europe/Paris)"
        ) from None
    return name


def _quoted_version(value: Any) -> Any:
    # YAML reads `version: 1.10` as the number 1.1: insist on a string so labels survive.
    if not isinstance(value, str):
        raise PydanticCustomError(
            "version_not_string",
            f'write the version in quotes (version: "{value}"), so that 1.10 is not read as 1.1',
        )
    return value


def _email(value: str) -> str:
    local, _, domain = value.partition("@")
    if not local or "." not in domain or " " in value:
        raise PydanticCustomError("not_an_email", f"{value!r} is not an e-mail address")
    return value


Code = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,8}$")]
SiteCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,8}$")]
FormCode = Annotated[str, AfterValidator(_form_code)]
Analyte = Annotated[str, AfterValidator(_analyte)]
UlnAnalyte = Annotated[str, AfterValidator(_analyte), AfterValidator(_uln_analyte)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]
CultureConditionCode = Annotated[str, AfterValidator(_culture_condition)]
Email = Annotated[str, AfterValidator(_email)]
GroupCodes = Annotated[tuple[Code, ...], Field(min_length=1)]
FieldPath = Annotated[str, StringConstraints(pattern=r"^[a-z_]+\.[a-z0-9_]+$")]


class _Spec(BaseModel):
    # By alias, so that a stored definition reads back as the file wrote it (label, not label_en).
    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)


# -- translations ------------------------------------------------------------------------------
#
# A label is written in English (`label:`) with its French beside it (`label_fr:`); the
# screens read `.label`, which answers in the language of the request. Keeping this in one
# place is what lets every template and view that prints a label stay as it is.


def _in_language(english: str, french: str | None) -> str:
    from django.utils.translation import get_language

    language = (get_language() or "").split("-")[0]
    return french if language == "fr" and french else english


Label = Annotated[str, Field(min_length=1, max_length=200)]


class _Labelled(_Spec):
    label_en: Label = Field(alias="label")
    label_fr: Label | None = None

    @property
    def label(self) -> str:
        return _in_language(self.label_en, self.label_fr)


# -- study, sites, arms and groups -----------------------------------------------------------


class StudySpec(_Spec):
    code: Annotated[str, StringConstraints(pattern=r"^NCT\d{8}$")]
    acronym: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=300)
    sponsor: str = Field(min_length=1, max_length=200)
    design: Literal["interventional", "observational"]
    blinded: bool
    target_enrolment: Annotated[int, Field(ge=1)] | None = None
    timezone: TimeZone = "Europe/Paris"


class SiteSpec(_Spec):
    code: SiteCode
    name: str = Field(min_length=1, max_length=300)
    city: str = Field(min_length=1, max_length=100)
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "FR"
    timezone: TimeZone = "Europe/Paris"


class ArmSpec(_Labelled):
    code: Code


class GroupSpec(_Labelled):
    code: Code


class RandomisationSpec(_Spec):
    method: Literal["permuted_blocks"]
    block_sizes: Annotated[tuple[Annotated[int, Field(ge=1)], ...], Field(min_length=1)]
    stratify_by: tuple[Literal["site"], ...] = ()
    ratio: dict[Code, Annotated[int, Field(ge=1)]]
    concealment: Literal["kit_number", "none"] = "none"

    @model_validator(mode="after")
    def _blocks_fit_the_ratio(self) -> RandomisationSpec:
        problems = _Problems()
        per_block = sum(self.ratio.values())
        for i, size in enumerate(self.block_sizes):
            if per_block and size % per_block:
                problems.add(
                    ("block_sizes", i),
                    f"block size {size} is not a multiple of the ratio's total {per_block}",
                )
        problems.raise_if_any()
        return self


# -- forms and visits ------------------------------------------------------------------------


class FormSpec(_Labelled):
    code: FormCode
    repeatable: bool = False
    per_patient: bool = Field(
        default=False, description="A log kept per patient (adverse events), not per visit."
    )


class VisitForm(_Spec):
    form: FormCode
    required: bool = True
    groups: GroupCodes | None = None
    condition: Literal["female_childbearing_potential"] | None = None
    note: str = ""

    def applies_to(self, group: str | None) -> bool:
        return group is None or self.groups is None or group in self.groups


class DayRange(_Spec):
    min: int
    max: int

    @model_validator(mode="after")
    def _ordered(self) -> DayRange:
        if self.min > self.max:
            raise PydanticCustomError(
                "day_range_reversed", f"min ({self.min}) must not be after max ({self.max})"
            )
        return self


class VisitSpec(_Spec):
    code: Code
    name_en: str = Field(alias="name", min_length=1, max_length=100)
    name_fr: str | None = Field(default=None, min_length=1, max_length=100)
    kind: Literal["scheduled", "unscheduled", "follow_on"] = "scheduled"
    target_day: int | None = None
    window_before_days: Annotated[int, Field(ge=0)] = 0
    window_after_days: Annotated[int, Field(ge=0)] = 0
    day_range: DayRange | None = None
    after_visit: Code | None = None
    repeatable: bool = False
    forms: Annotated[tuple[VisitForm, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _timing_matches_kind(self) -> VisitSpec:
        problems = _Problems()
        has_window = bool(self.window_before_days or self.window_after_days)
        if self.kind == "scheduled":
            if self.target_day is None and self.day_range is None:
                problems.add(
                    ("target_day",),
                    "missing field: a scheduled visit needs target_day (and its window) "
                    "or day_range",
                )
            if self.target_day is not None and self.day_range is not None:
                problems.add(("day_range",), "give target_day or day_range, not both")
            if self.day_range is not None and has_window:
                problems.add(
                    ("day_range",),
                    "a day_range is the whole window: leave out window_before_days "
                    "and window_after_days",
                )
        else:
            for name in ("target_day", "day_range"):
                if getattr(self, name) is not None:
                    problems.add((name,), f"{self._kind_phrase} has no {name}")
            if has_window:
                problems.add(("window_before_days",), f"{self._kind_phrase} has no window")
        if self.kind == "follow_on" and self.after_visit is None:
            problems.add(("after_visit",), "missing field: a follow_on visit names after_visit")
        if self.kind != "follow_on" and self.after_visit is not None:
            problems.add(("after_visit",), "only a follow_on visit has after_visit")
        seen: set[str] = set()
        for j, visit_form in enumerate(self.forms):
            if visit_form.form in seen:
                problems.add(
                    ("forms", j, "form"), f"form {visit_form.form!r} is listed twice at {self.code}"
                )
            seen.add(visit_form.form)
        problems.raise_if_any()
        return self

    @property
    def name(self) -> str:
        return _in_language(self.name_en, self.name_fr)

    @property
    def _kind_phrase(self) -> str:
        return {"unscheduled": "an unscheduled visit", "follow_on": "a follow_on visit"}.get(
            self.kind, "a scheduled visit"
        )

    @property
    def earliest_day(self) -> int | None:
        if self.day_range is not None:
            return self.day_range.min
        if self.target_day is not None:
            return self.target_day - self.window_before_days
        return None

    @property
    def latest_day(self) -> int | None:
        if self.day_range is not None:
            return self.day_range.max
        if self.target_day is not None:
            return self.target_day + self.window_after_days
        return None

    @property
    def form_codes(self) -> tuple[str, ...]:
        return tuple(f.form for f in self.forms)


# -- eligibility -----------------------------------------------------------------------------


class _Check(_Spec):
    """An automatic check: the condition the data must meet for the patient to be eligible."""

    forms_read: ClassVar[tuple[str, ...]] = ()
    groups: GroupCodes | None = None

    def needed_forms(self) -> tuple[str, ...]:
        return self.forms_read


class AgeAtConsentMin(_Check):
    """Age at consent >= years, from the year (and month) of birth; unsure means not eligible."""

    forms_read = ("demographics", "consent")
    rule: Literal["age_at_consent_min"]
    years: Annotated[int, Field(ge=0, le=120)]


class MrssTotalGt(_Check):
    forms_read = ("mrss",)
    rule: Literal["mrss_total_gt"]
    visit: Code
    value: Annotated[int, Field(ge=0, le=51)]


class LvefGt(_Check):
    forms_read = ("echocardiography",)
    rule: Literal["lvef_gt"]
    value: Annotated[float, Field(ge=0, le=100)]


class PregnancyTestNegativeWithinDays(_Check):
    """Women of childbearing potential: a negative test dated 0..days before inclusion."""

    forms_read = ("demographics", "pregnancy_test")
    rule: Literal["pregnancy_test_negative_within_days"]
    days: Annotated[int, Field(ge=0)]


class LabsMaxUlnRatio(_Check):
    """Each value / its upper normal limit <= ratio."""

    forms_read = ("safety_labs",)
    rule: Literal["labs_max_uln_ratio"]
    analytes: Annotated[tuple[UlnAnalyte, ...], Field(min_length=1)]
    ratio: Annotated[float, Field(gt=0)]


class LabsMin(_Check):
    """Each value >= its limit."""

    forms_read = ("safety_labs",)
    rule: Literal["labs_min"]
    limits: Annotated[dict[Analyte, float], Field(min_length=1)]


class NoEventWithin(_Check):
    """The dated event (form.field) is absent or older than the period before inclusion."""

    rule: Literal["no_event_within"]
    field: FieldPath
    months: Annotated[int, Field(ge=1)] | None = None
    days: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one_period(self) -> NoEventWithin:
        if (self.months is None) == (self.days is None):
            raise PydanticCustomError(
                "period", "give the period in months or in days (one of them)"
            )
        return self

    def needed_forms(self) -> tuple[str, ...]:
        return (self.field.partition(".")[0],)


class ClassificationMet(_Check):
    """The classification form concludes `classified`."""

    rule: Literal["classification_met"]
    form: FormCode

    def needed_forms(self) -> tuple[str, ...]:
        return (self.form,)


Check = Annotated[
    AgeAtConsentMin
    | MrssTotalGt
    | LvefGt
    | PregnancyTestNegativeWithinDays
    | LabsMaxUlnRatio
    | LabsMin
    | NoEventWithin
    | ClassificationMet,
    Field(discriminator="rule"),
]
# The rule names, read from the union above so the two cannot drift apart.
CHECK_RULES = frozenset(
    get_args(check_type.model_fields["rule"].annotation)[0]
    for check_type in get_args(get_args(Check)[0])
)


class Criterion(_Spec):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]{0,7}$")]
    kind: Literal["inclusion", "exclusion"]
    # The registry's wording, verbatim: it is the protocol's text whatever the screen's language.
    text: str = Field(min_length=1)
    text_fr: str | None = Field(default=None, min_length=1)
    groups: GroupCodes | None = None
    checks: tuple[Check, ...] = ()

    @property
    def translation(self) -> str | None:
        """The criterion in the request's language when that is not English (None: none)."""
        shown = _in_language(self.text, self.text_fr)
        return None if shown == self.text else shown

    def applies_to(self, group: str | None) -> bool:
        return group is None or self.groups is None or group in self.groups

    @property
    def expected_answer(self) -> bool:
        """The checklist answer that goes with eligibility (see the module docstring)."""
        return self.kind == "inclusion"


# -- safety and reminders --------------------------------------------------------------------


class LabAlert(_Spec):
    below: float | None = None
    above: float | None = None
    above_uln_ratio: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> LabAlert:
        if self.below is None and self.above is None and self.above_uln_ratio is None:
            raise PydanticCustomError(
                "no_limit", "give at least one of below, above, above_uln_ratio"
            )
        return self


class SafetySpec(_Spec):
    sae_report_deadline_hours: Annotated[int, Field(ge=1)]
    sponsor_safety_contacts: Annotated[tuple[Email, ...], Field(min_length=1)]
    lab_alerts: dict[Analyte, LabAlert] = Field(default_factory=dict)


Days = Annotated[int, Field(ge=0, le=366)]


def _distinct_days(name: str, days: tuple[int, ...]) -> None:
    repeated = sorted(d for d, n in Counter(days).items() if n > 1)
    if repeated:
        raise PydanticCustomError(
            "repeated_reminder", f"{name}: day {repeated[0]} is listed more than once"
        )


def _local_hour(value: object) -> object:
    # YAML reads an unquoted 10:00 as the number 600 (base 60): ask for quotes.
    if not isinstance(value, str) or not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
        raise PydanticCustomError(
            "local_hour",
            f'give a local time as "HH:MM" between "00:00" and "23:59", in quotes, not {value!r}',
        )
    return value


class PregnancyTestReminder(_Spec):
    """The test that must be dated within `days_before_inclusion` days before day 0: the site
    is reminded when that period opens, and again `remind_days_before_inclusion` days before
    the planned inclusion while no test is dated inside it."""

    days_before_inclusion: Annotated[int, Field(ge=1, le=90)]
    remind_days_before_inclusion: tuple[Days, ...] = ()

    @model_validator(mode="after")
    def _distinct(self) -> PregnancyTestReminder:
        _distinct_days("remind_days_before_inclusion", self.remind_days_before_inclusion)
        return self


class RemindersSpec(_Spec):
    """When the site's staff are reminded (calendar days in the site's time zone).

    Reminders say when people are told, not what is collected: the loader updates them in
    place for a loaded version, audited, like translations.
    """

    # The local hour reminders due on a day go out (the SAE ones go out as soon as due).
    send_at: Annotated[str, BeforeValidator(_local_hour)] = "08:00"
    # A visit's window opens in N days (0: the day it opens).
    window_opens_in_days: tuple[Days, ...] = ()
    # N days before the visit's target day (0 is the target day itself).
    days_before_target: tuple[Days, ...] = ()
    # The window closes in N days (0: its last day).
    window_closes_in_days: tuple[Days, ...] = ()
    # Overdue: first N days after the day following the window's end, then every
    # `overdue_repeat_days` until the visit is done or declared missed.
    overdue_after_days: Days = 0
    overdue_repeat_days: Annotated[int, Field(ge=1, le=366)] = 7
    pregnancy_test: PregnancyTestReminder | None = None
    # The SAE initial report: a reminder this many hours before it is due, then one when
    # it is overdue and every `sae_overdue_repeat_hours` after.
    sae_due_within_hours: Annotated[int, Field(ge=1, le=168)] = 6
    sae_overdue_repeat_hours: Annotated[int, Field(ge=1, le=168)] = 24
    # A SUSAR's clock: a reminder this many days before the authorities' deadline.
    susar_days_before_deadline: Days = 2
    # Queries open for more than this many days (the review app's queries).
    query_reminder_days: Annotated[int, Field(ge=1, le=366)] = 7

    @model_validator(mode="after")
    def _distinct(self) -> RemindersSpec:
        for name in ("window_opens_in_days", "days_before_target", "window_closes_in_days"):
            _distinct_days(name, getattr(self, name))
        return self

    @property
    def send_time(self) -> time:
        hour, minute = self.send_at.split(":")
        return time(int(hour), int(minute))


# -- review ----------------------------------------------------------------------------------


class SdvSpec(_Spec):
    """The source data verification plan: what a monitor verifies against the source.

    Every instance of the `always` forms, at every visit (consent, eligibility, the primary
    endpoint), and with `serious_adverse_events` every serious adverse event and its SAE
    reports; the other forms for a share of the patients (`sample_percent`), drawn from the
    subject code with the deployment's secret seed (settings.SDV_SEED, not in this file:
    the sites must not be able to tell which patients are sampled). The draw is the same
    whenever it is made, so a patient never leaves or joins the sample.

    The plan says how the data are reviewed, not what the protocol collects: the loader
    updates it in place for a loaded version, audited, like the reminders. A file without
    the section verifies everything (100 %).
    """

    always: tuple[FormCode, ...] = ()
    serious_adverse_events: bool = True
    sample_percent: Annotated[int, Field(ge=0, le=100)] = 100

    def requires(self, form_code: str, *, serious: bool = False, sampled: bool) -> bool:
        """Whether an instance of the form is verified: `serious` for an adverse event or an
        SAE report of a serious one, `sampled` whether the patient is in the sample."""
        if form_code in self.always or (self.serious_adverse_events and serious):
            return True
        return sampled


# -- laboratory ------------------------------------------------------------------------------


class LaboratorySpec(_Spec):
    """The macrophage cultures of a laboratory visit (the mdm_cytokines and mdm_flow forms)."""

    # Every condition a group's participant needs, for each culture form of the visit.
    conditions: dict[Code, Annotated[tuple[CultureConditionCode, ...], Field(min_length=1)]]
    # The groups whose serum the healthy donors' serum conditions may use.
    serum_donor_groups: tuple[Code, ...] = ()
    # Results are dated at least this many days after the blood sample (0: the same day).
    culture_min_days: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _consistent(self) -> LaboratorySpec:
        problems = _Problems()
        for group, conditions in self.conditions.items():
            for k, code in enumerate(conditions):
                if code in conditions[:k]:
                    problems.add(("conditions", group, k), f"{code!r} is listed twice")
            if SERUM_CULTURE_CONDITIONS & set(conditions) and not self.serum_donor_groups:
                problems.add(
                    ("serum_donor_groups",),
                    f"group {group} uses serum conditions: name the serum donors' groups",
                )
        problems.raise_if_any()
        return self

    def conditions_for(self, group: str | None) -> tuple[str, ...]:
        return self.conditions.get(group or "", ())


# -- the protocol ----------------------------------------------------------------------------


class Protocol(_Spec):
    study: StudySpec
    version: Annotated[
        str,
        BeforeValidator(_quoted_version),
        StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z.\-]{0,31}$"),
    ]
    effective_date: date
    sites: Annotated[tuple[SiteSpec, ...], Field(min_length=1)]
    arms: tuple[ArmSpec, ...] = ()
    randomisation: RandomisationSpec | None = None
    groups: tuple[GroupSpec, ...] = ()
    forms: Annotated[tuple[FormSpec, ...], Field(min_length=1)]
    visits: Annotated[tuple[VisitSpec, ...], Field(min_length=1)]
    eligibility: tuple[Criterion, ...] = ()
    safety: SafetySpec
    reminders: RemindersSpec
    sdv: SdvSpec = SdvSpec()
    laboratory: LaboratorySpec | None = None

    # -- reading ------------------------------------------------------------------------

    @property
    def arm_codes(self) -> tuple[str, ...]:
        return tuple(arm.code for arm in self.arms)

    @property
    def group_codes(self) -> tuple[str, ...]:
        return tuple(group.code for group in self.groups)

    def visit(self, code: str) -> VisitSpec:
        for visit in self.visits:
            if visit.code == code:
                return visit
        raise KeyError(f"{self.study.code} v{self.version} has no visit {code!r}")

    def form(self, code: str) -> FormSpec:
        for form in self.forms:
            if form.code == code:
                return form
        raise KeyError(f"{self.study.code} v{self.version} has no form {code!r}")

    def form_label(self, code: str) -> str:
        """The form's name as the screens give it; its code for a form the file lacks."""
        try:
            return self.form(code).label
        except KeyError:
            return code

    def scheduled_visits(self) -> tuple[VisitSpec, ...]:
        return tuple(v for v in self.visits if v.kind == "scheduled")

    @property
    def day0_visit(self) -> VisitSpec:
        """The visit that defines day 0 (inclusion): validation guarantees there is one."""
        return next(v for v in self.visits if v.kind == "scheduled" and v.target_day == 0)

    def forms_for_visit(self, visit_code: str, group: str | None = None) -> tuple[VisitForm, ...]:
        """The forms expected at a visit; with a group, only those that apply to it."""
        return tuple(f for f in self.visit(visit_code).forms if f.applies_to(group))

    def has_form(self, code: str) -> bool:
        """Whether the study collects this form at all (the AE log, for example)."""
        return any(f.code == code for f in self.forms)

    def per_patient_forms(self) -> tuple[FormSpec, ...]:
        return tuple(f for f in self.forms if f.per_patient)

    def eligibility_for(self, group: str | None = None) -> tuple[Criterion, ...]:
        return tuple(c for c in self.eligibility if c.applies_to(group))

    # -- cross-field validation -------------------------------------------------------------

    @model_validator(mode="after")
    def _consistent(self) -> Protocol:
        problems = _Problems()
        self._check_unique(problems)
        self._check_arms_and_groups(problems)
        self._check_visits(problems)
        self._check_eligibility(problems)
        self._check_laboratory(problems)
        self._check_sdv(problems)
        problems.raise_if_any()
        return self

    def _check_unique(self, problems: _Problems) -> None:
        for section, key, noun in (
            ("sites", "code", "site code"),
            ("arms", "code", "arm code"),
            ("groups", "code", "group code"),
            ("forms", "code", "form"),
            ("visits", "code", "visit code"),
            ("eligibility", "id", "criterion id"),
        ):
            first_seen: dict[str, int] = {}
            for i, item in enumerate(getattr(self, section)):
                value = getattr(item, key)
                if value in first_seen:
                    problems.add(
                        (section, i, key),
                        f"duplicate {noun} {value!r} (first at {section}[{first_seen[value]}])",
                    )
                else:
                    first_seen[value] = i

    def _check_arms_and_groups(self, problems: _Problems) -> None:
        if self.arms and self.groups:
            problems.add(("groups",), "a study has arms or groups, not both")
        if self.randomisation is not None:
            if not self.arms:
                problems.add(("randomisation",), "randomisation needs arms")
            elif set(self.randomisation.ratio) != set(self.arm_codes):
                problems.add(
                    ("randomisation", "ratio"),
                    f"the ratio must give every arm ({', '.join(self.arm_codes)}) "
                    f"and only them, not {', '.join(self.randomisation.ratio)}",
                )

    def _check_groups(self, problems: _Problems, loc: tuple, groups, within=None) -> None:
        known = set(self.group_codes)
        for k, code in enumerate(groups or ()):
            if code not in known:
                where = f"groups: {', '.join(self.group_codes)}" if known else "it has no groups"
                problems.add(
                    (*loc, "groups", k),
                    f"unknown group {code!r}: not a group of this study ({where})",
                )
            elif within is not None and code not in within:
                problems.add(
                    (*loc, "groups", k),
                    f"group {code!r} is not among the criterion's groups ({', '.join(within)})",
                )

    def _check_visits(self, problems: _Problems) -> None:
        catalogue = {f.code: f for f in self.forms}
        codes = [v.code for v in self.visits]
        used: set[str] = set()
        for i, visit in enumerate(self.visits):
            for j, visit_form in enumerate(visit.forms):
                spec = catalogue.get(visit_form.form)
                used.add(visit_form.form)
                if spec is None:
                    problems.add(
                        ("visits", i, "forms", j, "form"),
                        f"unknown form {visit_form.form!r}: not in this study's forms "
                        f"({', '.join(catalogue)})",
                    )
                elif spec.per_patient:
                    problems.add(
                        ("visits", i, "forms", j, "form"),
                        f"{visit_form.form!r} is kept per patient, not at a visit",
                    )
                self._check_groups(problems, ("visits", i, "forms", j), visit_form.groups)
            if visit.after_visit is not None:
                if visit.after_visit not in codes:
                    problems.add(
                        ("visits", i, "after_visit"), f"unknown visit {visit.after_visit!r}"
                    )
                elif codes.index(visit.after_visit) >= i:
                    problems.add(
                        ("visits", i, "after_visit"),
                        f"{visit.after_visit!r} must be listed before {visit.code}",
                    )
        for i, form in enumerate(self.forms):
            if not form.per_patient and form.code not in used:
                problems.add(("forms", i, "code"), f"form {form.code!r} is used at no visit")
        self._check_windows(problems)

    def _check_windows(self, problems: _Problems) -> None:
        previous: VisitSpec | None = None
        day0 = []
        for i, visit in enumerate(self.visits):
            if visit.kind != "scheduled":
                continue
            if visit.target_day == 0:
                day0.append(i)
                if visit.window_before_days or visit.window_after_days:
                    problems.add(
                        ("visits", i),
                        f"{visit.code} defines day 0, so its window must be 0/0",
                    )
            if previous is not None:
                span = f"days {visit.earliest_day}..{visit.latest_day}"
                other = f"{previous.code} (days {previous.earliest_day}..{previous.latest_day})"
                if _day_order(visit) <= _day_order(previous):
                    problems.add(
                        ("visits", i),
                        f"{visit.code} ({span}) comes before {other}: "
                        "list scheduled visits in chronological order",
                    )
                elif visit.earliest_day <= previous.latest_day:
                    problems.add(("visits", i), f"window of {visit.code} ({span}) overlaps {other}")
            previous = visit
        if not day0:
            problems.add(
                ("visits",),
                "no visit defines day 0: the inclusion visit needs target_day: 0",
            )
        for i in day0[1:]:
            problems.add(("visits", i, "target_day"), "only one visit may have target_day: 0")

    def _check_eligibility(self, problems: _Problems) -> None:
        catalogue = {f.code for f in self.forms}
        if self.eligibility and not any("eligibility" in v.form_codes for v in self.visits):
            problems.add(
                ("eligibility",),
                "criteria are listed but no visit has the 'eligibility' form",
            )
        for i, criterion in enumerate(self.eligibility):
            self._check_groups(problems, ("eligibility", i), criterion.groups)
            for k, check in enumerate(criterion.checks):
                loc = ("eligibility", i, "checks", k)
                self._check_groups(problems, loc, check.groups, within=criterion.groups)
                for form in check.needed_forms():
                    if form in form_codes() and form not in catalogue:
                        problems.add(
                            loc,
                            f"rule {check.rule} reads the {form!r} form, "
                            "which is not in this study's forms",
                        )
                if isinstance(check, ClassificationMet) and check.form not in CLASSIFICATION_FORMS:
                    problems.add(
                        (*loc, "form"),
                        f"{check.form!r} is not a classification form "
                        f"({', '.join(sorted(CLASSIFICATION_FORMS))})",
                    )
                if isinstance(check, NoEventWithin):
                    form = check.field.partition(".")[0]
                    if form not in form_codes():
                        problems.add((*loc, "field"), _known(form, form_codes(), "form"))
                if isinstance(check, MrssTotalGt):
                    if check.visit not in {v.code for v in self.visits}:
                        problems.add((*loc, "visit"), f"unknown visit {check.visit!r}")
                    elif "mrss" not in self.visit(check.visit).form_codes:
                        problems.add((*loc, "visit"), f"visit {check.visit} has no 'mrss' form")

    def _check_laboratory(self, problems: _Problems) -> None:
        if self.laboratory is None:
            return
        if not CULTURE_FORMS & {f.code for f in self.forms}:
            problems.add(
                ("laboratory",),
                f"a laboratory section needs a culture form ({', '.join(sorted(CULTURE_FORMS))})",
            )
        known = set(self.group_codes)
        where = f"groups: {', '.join(self.group_codes)}" if known else "it has no groups"
        for group in self.laboratory.conditions:
            if group not in known:
                problems.add(
                    ("laboratory", "conditions", group),
                    f"unknown group {group!r}: not a group of this study ({where})",
                )
        for k, group in enumerate(self.laboratory.serum_donor_groups):
            if group not in known:
                problems.add(
                    ("laboratory", "serum_donor_groups", k),
                    f"unknown group {group!r}: not a group of this study ({where})",
                )

    def _check_sdv(self, problems: _Problems) -> None:
        catalogue = [f.code for f in self.forms]
        for k, code in enumerate(self.sdv.always):
            if code not in catalogue:
                problems.add(
                    ("sdv", "always", k),
                    f"{code!r} is not in this study's forms ({', '.join(catalogue)})",
                )
            elif code in self.sdv.always[:k]:
                problems.add(("sdv", "always", k), f"{code!r} is listed twice")


def _day_order(visit: VisitSpec) -> int:
    # A visit is "at" its target day; a range visit, at its first day.
    return visit.target_day if visit.target_day is not None else visit.earliest_day


# -- reading a file --------------------------------------------------------------------------


# libyaml's parser when PyYAML was built with it (the wheels are): ten times faster.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):
    """safe_load that refuses a key given twice, which plain YAML silently resolves."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _value in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # unhashable key: let PyYAML report it
                    break
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


def display_name(path: Path | str) -> str:
    """The file as people will recognise it: relative to the working directory when inside."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def parse_protocol(data: bytes | str, *, source: str) -> Protocol:
    """Validate a protocol document; raise ProtocolError naming `source`, place and problem."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                source, [(f"byte {exc.start}", "the file is not UTF-8 text")]
            ) from None
    try:
        document = yaml.load(data, Loader=_StrictLoader)  # noqa: S506  # nosec B506  # a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        place = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ProtocolError(source, [(place, f"YAML syntax: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise ProtocolError(source, [("", f"YAML syntax: {exc}")]) from None
    if document is None:
        raise ProtocolError(source, [("", "the file is empty")])
    if not isinstance(document, dict):
        raise ProtocolError(
            source,
            [
                (
                    "",
                    "the file must be a mapping of sections (study:, version:, sites:, ...), "
                    f"not {document!r:.80}",
                )
            ],
        )
    try:
        return Protocol.model_validate(document)
    except ValidationError as exc:
        raise ProtocolError(source, list(describe_errors(exc))) from None


def read_protocol(path: Path | str) -> Protocol:
    source = display_name(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ProtocolError(source, [("", f"cannot read the file: {exc.strerror}")]) from None
    return parse_protocol(data, source=source)


def describe_errors(exc: ValidationError):
    """(place, problem) pairs in the words of the protocol file, not of pydantic."""
    errors = exc.errors(include_url=False)
    for error in errors:
        if error["type"] == "too_short" and any(
            other["loc"][: len(error["loc"])] == error["loc"] and other is not error
            for other in errors
        ):
            continue  # a list "too short" only because its items were refused
        loc = _without_union_tags(error["loc"])
        if error["type"] == _PROBLEMS:
            for sub_loc, message in error["ctx"]["problems"]:
                yield _place(loc + tuple(sub_loc)), message
            continue
        if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
            loc = (*loc, error["ctx"]["discriminator"].strip("'"))
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
        yield _place(loc), _describe(error)


def _without_union_tags(loc: tuple) -> tuple:
    # Pydantic puts the chosen rule in the location (checks[0].lvef_gt.value); the file
    # has no such level, so the place would point nowhere.
    return tuple(
        part
        for n, part in enumerate(loc)
        if not (part in CHECK_RULES and n >= 2 and loc[n - 2] == "checks")
    )


def _describe(error: dict) -> str:
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    scalar = isinstance(value, str | int | float | bool | date) or value is None
    match kind:
        case "missing":
            return "missing field"
        case "extra_forbidden":
            return "unknown field"
        case "greater_than_equal":
            return f"must be >= {ctx['ge']}, not {value!r}"
        case "greater_than":
            return f"must be > {ctx['gt']}, not {value!r}"
        case "less_than_equal":
            return f"must be <= {ctx['le']}, not {value!r}"
        case "less_than":
            return f"must be < {ctx['lt']}, not {value!r}"
        case "string_pattern_mismatch":
            return f"must match {ctx['pattern']}, not {value!r}"
        case "string_too_long":
            return f"must be at most {ctx['max_length']} characters, not {len(value)}"
        case "string_too_short":
            return "must not be empty"
        case "too_short":
            minimum = ctx["min_length"]
            return "must not be empty" if minimum == 1 else f"must list at least {minimum} items"
        case "literal_error":
            return f"must be {ctx['expected']}, not {value!r}"
        case "union_tag_invalid":
            return f"unknown rule {ctx['tag']!r} (known: {', '.join(sorted(CHECK_RULES))})"
        case "union_tag_not_found":
            return "missing field"
        case "model_type" | "dict_type" | "model_attributes_type":
            return f"must be a mapping (key: value), not {value!r}"
        case "list_type" | "tuple_type":
            return f"must be a list, not {value!r}"
        case (
            "date_type"
            | "date_parsing"
            | "date_from_datetime_parsing"
            | "date_from_datetime_inexact"
        ):
            return f"must be a date (YYYY-MM-DD), not {value!r}"
        case "value_error":
            return error["msg"].removeprefix("Value error, ")
    message = error["msg"]
    if kind not in {"unknown_form", "unknown_analyte"} and message[:6] == "Input ":
        message = message[0].lower() + message[1:]
        if scalar:
            message += f", not {value!r}"
    return message
