"""What the safety services check before they write: every rule an
adverse event must meet (scoring.md §6, crf-spec.md's adverse_event).

Nothing here writes: the services in `ecrf.safety.services` ask these functions first and
save only what passes.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.patients.models import Patient
from ecrf.patients.visits import consent_date
from ecrf.safety.clock import PartialDateError, partial_date_bounds, site_date
from ecrf.safety.models import MEDDRA_CODE_RE, SAE_CRITERIA, AdverseEvent

# The fields an investigator enters; everything else is derived or set by a workflow.
AE_FIELDS = (
    "term",
    "meddra_llt_code",
    "meddra_pt_code",
    "onset_date",
    "end_date",
    "ongoing",
    "ctcae_grade",
    "serious",
    *SAE_CRITERIA,
    "relatedness",
    "expected",
    "action_taken",
    "outcome",
    "death_date",
    "aware_at",
    "serious_aware_at",
)
REQUIRED = ("term", "onset_date", "ctcae_grade", "relatedness", "action_taken", "outcome")
CHOICES = {
    "relatedness": AdverseEvent.Relatedness.values,
    "action_taken": AdverseEvent.Action.values,
    "outcome": AdverseEvent.Outcome.values,
}
CTCAE_GRADES = (1, 2, 3, 4, 5)
TERM_MAX_LENGTH = AdverseEvent._meta.get_field("term").max_length
MEDDRA_FIELDS = {"meddra_llt_code": "MedDRA LLT code", "meddra_pt_code": "MedDRA PT code"}
MEDDRA_CODE = re.compile(MEDDRA_CODE_RE.strip("^$"), re.ASCII)
# Patients whose log is still open for new events.
OPEN_STATUSES = (Patient.Status.SCREENING, Patient.Status.ENROLLED)


# -- validation --------------------------------------------------------------------------------


def ae_problems(
    *,
    patient: Patient,
    values: dict,
    now: datetime | None = None,
    event: AdverseEvent | None = None,
) -> dict:
    """Every rule of scoring.md §6 and crf-spec.md's adverse_event, as field -> message.

    `event` is the event being changed, when it is a change. `serious_aware_at`, when the
    site became aware that the event is serious, starts the SAE clock: left empty, it is
    the event's `aware_at` (serious from the moment it was known), except when a recorded
    non-serious event turns serious, where it must be given.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    errors: dict[str, str] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, message)

    for field in REQUIRED:
        value = values.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            add(field, _("This field is required."))
    term = values.get("term")
    if isinstance(term, str) and len(term.strip()) > TERM_MAX_LENGTH:
        add("term", _("Keep the term within %d characters.") % TERM_MAX_LENGTH)
    elif isinstance(term, str) and len(term.strip().splitlines()) > 1:
        add("term", _("The term is one line: put details in the SAE narrative."))
    grade = values.get("ctcae_grade")
    if grade is not None and grade not in CTCAE_GRADES:
        add("ctcae_grade", _("The CTCAE grade is 1, 2, 3, 4 or 5."))
    for field, choices in CHOICES.items():
        if values.get(field) and values[field] not in choices:
            add(field, _("Choose one of: %s.") % ", ".join(choices))
    # The database refuses other codes too (ae_meddra_*_format); say so here, by field.
    for field, label in MEDDRA_FIELDS.items():
        code = values.get(field) or ""
        if code and not MEDDRA_CODE.fullmatch(code):
            add(field, _("%s: 8 digits (e.g. 10028813), or leave it empty.") % label)
    if values.get("expected") is None:
        add("expected", _("Say whether the event is expected (listed in the brochure)."))
    if values.get("aware_at") is None:
        add("aware_at", _("Give the date and time the site became aware of the event."))

    onset = None
    if values.get("onset_date"):
        try:
            onset = partial_date_bounds(values["onset_date"])
        except PartialDateError:
            add(
                "onset_date",
                _("Onset date: write YYYY-MM-DD, or YYYY-MM when the day is not known."),
            )
    end_date: date | None = values.get("end_date")
    death_date: date | None = values.get("death_date")
    aware_at: datetime | None = values.get("aware_at")
    if aware_at is not None and timezone.is_naive(aware_at):
        add("aware_at", _("Give the moment of awareness with its time zone."))
        aware_at = None
    consented = consent_date(patient)

    if consented is None:
        add("onset_date", _("Record the patient's consent first: the log opens at consent."))
    if onset is not None:
        earliest, latest = onset
        if earliest > today:
            add("onset_date", _("The onset date cannot be in the future."))
        elif consented is not None and latest < consented:
            add(
                "onset_date",
                _(
                    "Onset %(onset)s is before consent (%(consent)s): a condition present "
                    "before consent is pre-existing, recorded in the medical history, "
                    "not an adverse event."
                )
                % {"onset": values["onset_date"], "consent": consented.isoformat()},
            )
        elif patient.end_date and earliest > patient.end_date:
            add(
                "onset_date",
                _("Onset is after the patient's end of study (%s): the log is closed.")
                % patient.end_date.isoformat(),
            )
        if end_date is not None and end_date < earliest:
            add(
                "end_date",
                _("The end date %(end)s is before the onset date %(onset)s.")
                % {"end": end_date.isoformat(), "onset": values["onset_date"]},
            )
        if death_date is not None and death_date < earliest:
            add(
                "death_date",
                _("The date of death is before the onset date %s.") % values["onset_date"],
            )
        # The day the site became aware is the day on the site's calendar, not UTC's.
        if aware_at is not None and site_date(aware_at, patient.site.timezone) < earliest:
            add("aware_at", _("The site cannot have become aware before the onset."))

    if values.get("ongoing") and end_date is not None:
        add("end_date", _("Give an end date or tick 'ongoing', not both."))
    if not values.get("ongoing") and end_date is None:
        add("end_date", _("Give the end date, or tick 'ongoing'."))
    for field, day in (("end_date", end_date), ("death_date", death_date)):
        if day is not None and day > today:
            add(field, _("The date cannot be in the future."))
    if aware_at is not None and aware_at > now:
        add("aware_at", _("The moment of awareness cannot be in the future."))

    outcome = values.get("outcome")
    if grade == 5:
        if outcome != AdverseEvent.Outcome.FATAL:
            add("outcome", _("A grade 5 event (death) has the outcome 'fatal'."))
        if death_date is None:
            add("death_date", _("A grade 5 event needs the date of death."))
    elif outcome == AdverseEvent.Outcome.FATAL:
        add("ctcae_grade", _("An event with a fatal outcome is grade 5."))
    elif death_date is not None:
        # (For a grade 5 event it is the outcome that is wrong, and said so above.)
        add("death_date", _("A date of death goes with the outcome 'fatal' only."))
    if (
        death_date is not None
        and patient.status == Patient.Status.DIED
        and death_date != patient.end_date
    ):
        # A patient dies once. The date may be corrected on the event that recorded the
        # death (the patient's end date follows it), not contradicted by another event.
        others = patient.adverse_events.filter(ctcae_grade=5)
        if event is not None:
            others = others.exclude(pk=event.pk)
        if others.exists():
            add(
                "death_date",
                _("The patient's death is recorded on %s: give that date.")
                % patient.end_date.isoformat(),
            )

    ticked = [name for name in SAE_CRITERIA if values.get(name)]
    if values.get("serious"):
        if not ticked:
            add("serious", _("A serious event needs at least one seriousness criterion."))
    else:
        for name in ticked:
            add(
                name,
                _("A seriousness criterion is ticked but the event is not marked serious."),
            )
    if (grade == 5 or outcome == AdverseEvent.Outcome.FATAL) and not values.get("sae_death"):
        add("sae_death", _("An event that results in death is serious with 'results in death'."))
    elif values.get("sae_death") and grade != 5 and outcome != AdverseEvent.Outcome.FATAL:
        add("sae_death", _("'Results in death' goes with the outcome 'fatal' (grade 5)."))

    serious_aware_at: datetime | None = values.get("serious_aware_at")
    if not values.get("serious"):
        if serious_aware_at is not None:
            add(
                "serious_aware_at",
                _(
                    "A moment of awareness of seriousness is given but the event is not "
                    "marked serious."
                ),
            )
    elif serious_aware_at is None:
        # Defaulting to the event's awareness would make an event that became serious
        # days later overdue at once: the site says when it learned of the seriousness.
        if event is not None and not event.serious:
            add(
                "serious_aware_at",
                _("Give the date and time the site became aware that the event is serious."),
            )
    elif timezone.is_naive(serious_aware_at):
        add(
            "serious_aware_at",
            _("Give the moment of awareness of the seriousness with its time zone."),
        )
    else:
        if aware_at is not None and serious_aware_at < aware_at:
            add(
                "serious_aware_at",
                _(
                    "The site cannot have become aware that the event is serious before it "
                    "became aware of the event (%s, site time)."
                )
                % site_time(aware_at, patient.site.timezone),
            )
        if serious_aware_at > now:
            add(
                "serious_aware_at",
                _(
                    "The moment the site became aware that the event is serious cannot be in "
                    "the future."
                ),
            )
    return errors


def site_time(instant: datetime, zone: str) -> str:
    return f"{instant.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"


def entered_values(values: dict) -> dict:
    """The fields an investigator enters, the verbatim term without surrounding blanks."""
    values = {k: v for k, v in values.items() if k in AE_FIELDS}
    if isinstance(values.get("term"), str):
        values["term"] = values["term"].strip()
    return values


def with_serious_clock(values: dict) -> dict:
    """Valid answers with the SAE clock's start: given, or the event's awareness for an
    event serious from the moment it was known; none for a non-serious event."""
    if not values.get("serious"):
        return {**values, "serious_aware_at": None}
    return {**values, "serious_aware_at": values.get("serious_aware_at") or values["aware_at"]}
