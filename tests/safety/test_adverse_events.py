"""Recording adverse events: the rules of scoring.md §6, numbering, and who may record.

Every refused event names the fields at fault and leaves no row behind.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ecrf.patients.services import patient_create
from ecrf.safety.models import AdverseEvent, SaeReport
from ecrf.safety.services import ae_create, ae_problems
from tests.factories import AdverseEventFactory
from tests.safety.conftest import CONSENT_DAY, ae_values, at, consent

pytestmark = pytest.mark.django_db

AWARE = ae_values()["aware_at"]


def refused(world, patient, values, by=None) -> dict[str, list[str]]:
    """ae_create's errors (field -> messages), after checking that nothing was saved."""
    before = (AdverseEvent.objects.count(), SaeReport.objects.count())
    with pytest.raises(ValidationError) as excinfo:
        ae_create(patient=patient, by=by or world.alice, values=values)
    assert (AdverseEvent.objects.count(), SaeReport.objects.count()) == before
    return excinfo.value.message_dict


def fatal(**overrides) -> dict:
    """A grade 5 event, serious with 'results in death', as the rules want it."""
    values = ae_values(
        term="Scleroderma renal crisis",
        ctcae_grade=5,
        serious=True,
        sae_death=True,
        outcome="fatal",
        end_date=date(2026, 10, 6),
        death_date=date(2026, 10, 6),
    )
    values.update(overrides)
    return values


# -- dates ---------------------------------------------------------------------------------


def test_end_date_before_onset_is_refused(world, patient):
    errors = refused(world, patient, ae_values(end_date=date(2026, 9, 30)))
    assert set(errors) == {"end_date"}
    assert errors["end_date"] == ["The end date 2026-09-30 is before the onset date 2026-10-01."]


def test_onset_before_consent_is_a_pre_existing_condition(world, patient):
    errors = refused(world, patient, ae_values(onset_date="2026-09-14"))
    assert set(errors) == {"onset_date"}
    (message,) = errors["onset_date"]
    assert "before consent (2026-09-15)" in message
    assert "pre-existing" in message
    assert "medical history" in message


def test_partial_onset_in_an_earlier_month_than_consent_is_refused(world, patient):
    errors = refused(world, patient, ae_values(onset_date="2026-08"))
    assert set(errors) == {"onset_date"}
    assert "pre-existing" in errors["onset_date"][0]


def test_partial_onset_in_the_consent_month_is_accepted(world, patient):
    # September 2026 may mean a day after the consent of the 15th: not provably pre-existing.
    event = ae_create(patient=patient, by=world.alice, values=ae_values(onset_date="2026-09"))
    event.refresh_from_db()
    assert event.onset_date == "2026-09"
    assert ae_problems(patient=patient, values=ae_values(onset_date="2026-09")) == {}


def test_an_end_date_in_the_month_of_a_partial_onset_is_accepted(world, patient):
    values = ae_values(onset_date="2026-10", end_date=date(2026, 10, 1))
    assert ae_problems(patient=patient, values=values) == {}


@pytest.mark.parametrize(
    "onset",
    ["2026-13", "2026-00", "2026-02-30", "2026/01/01", "2026-1-05", "26-10-01", "2026-10\n"],
)
def test_onset_in_another_format_is_refused(world, patient, onset):
    errors = refused(world, patient, ae_values(onset_date=onset))
    assert set(errors) == {"onset_date"}
    assert errors["onset_date"] == [
        "Onset date: write YYYY-MM-DD, or YYYY-MM when the day is not known."
    ]


def test_onset_with_non_ascii_digits_is_refused(world, patient):
    # Arabic-Indic digits pass Python's \d but not the database's [0-9].
    errors = refused(world, patient, ae_values(onset_date="٢٠٢٦-١٠-٠١"))
    assert set(errors) == {"onset_date"}


def test_no_event_before_consent_is_recorded(world, unconsented):
    errors = refused(world, unconsented, ae_values())
    assert set(errors) == {"onset_date"}
    assert "consent first" in errors["onset_date"][0]


def test_ongoing_event_with_an_end_date_is_refused(world, patient):
    errors = refused(world, patient, ae_values(ongoing=True, end_date=date(2026, 10, 5)))
    assert errors == {"end_date": ["Give an end date or tick 'ongoing', not both."]}


def test_event_neither_ongoing_nor_ended_is_refused(world, patient):
    errors = refused(world, patient, ae_values(ongoing=False, end_date=None))
    assert errors == {"end_date": ["Give the end date, or tick 'ongoing'."]}


def test_future_onset_is_refused(world, patient):
    tomorrow = timezone.localdate() + timedelta(days=1)
    values = ae_values(
        onset_date=tomorrow.isoformat(), ongoing=True, end_date=None, aware_at=timezone.now()
    )
    errors = refused(world, patient, values)
    assert errors["onset_date"] == ["The onset date cannot be in the future."]
    # Nobody can be aware of an event that has not begun either.
    assert set(errors) == {"onset_date", "aware_at"}


def test_future_end_date_is_refused(world, patient):
    errors = refused(world, patient, ae_values(end_date=timezone.localdate() + timedelta(days=1)))
    assert errors == {"end_date": ["The date cannot be in the future."]}


def test_future_date_of_death_is_refused(world, patient):
    tomorrow = timezone.localdate() + timedelta(days=1)
    errors = refused(world, patient, fatal(end_date=date(2026, 10, 6), death_date=tomorrow))
    assert errors == {"death_date": ["The date cannot be in the future."]}


def test_future_awareness_is_refused(world, patient):
    errors = refused(world, patient, ae_values(aware_at=timezone.now() + timedelta(hours=1)))
    assert errors == {"aware_at": ["The moment of awareness cannot be in the future."]}


def test_awareness_before_the_onset_day_at_the_site_is_refused(world, patient):
    # 21:30 UTC on 30 September is 23:30 in Bordeaux: the day before the onset.
    errors = refused(world, patient, ae_values(aware_at=at(2026, 9, 30, 21, 30)))
    assert errors == {"aware_at": ["The site cannot have become aware before the onset."]}


def test_awareness_on_the_onset_day_at_the_site_is_accepted(world, patient):
    # 22:30 UTC on 30 September is already 00:30 on 1 October in Bordeaux.
    values = ae_values(aware_at=at(2026, 9, 30, 22, 30))
    assert ae_problems(patient=patient, values=values) == {}


def test_naive_awareness_instant_is_refused(world, patient):
    errors = refused(world, patient, ae_values(aware_at=at(2026, 10, 2, 9, 0).replace(tzinfo=None)))
    assert set(errors) == {"aware_at"}


# -- grade, outcome, death ------------------------------------------------------------------


def test_grade_5_event_without_a_fatal_outcome_is_refused(world, patient):
    errors = refused(world, patient, fatal(outcome="not_recovered"))
    assert errors == {"outcome": ["A grade 5 event (death) has the outcome 'fatal'."]}


def test_grade_5_event_without_a_date_of_death_is_refused(world, patient):
    errors = refused(world, patient, fatal(death_date=None))
    assert errors == {"death_date": ["A grade 5 event needs the date of death."]}


def test_fatal_outcome_below_grade_5_is_refused(world, patient):
    errors = refused(world, patient, fatal(ctcae_grade=4))
    assert errors == {"ctcae_grade": ["An event with a fatal outcome is grade 5."]}


def test_date_of_death_without_a_fatal_outcome_is_refused(world, patient):
    errors = refused(world, patient, ae_values(death_date=date(2026, 10, 5)))
    assert errors == {"death_date": ["A date of death goes with the outcome 'fatal' only."]}


def test_date_of_death_before_onset_is_refused(world, patient):
    errors = refused(world, patient, fatal(death_date=date(2026, 9, 30)))
    assert errors == {"death_date": ["The date of death is before the onset date 2026-10-01."]}


def test_death_without_the_seriousness_criterion_is_refused(world, patient):
    errors = refused(world, patient, fatal(sae_death=False, sae_hospitalisation=True))
    assert set(errors) == {"sae_death"}


def test_results_in_death_without_a_fatal_outcome_is_refused(world, patient):
    values = ae_values(ctcae_grade=4, serious=True, sae_death=True)
    errors = refused(world, patient, values)
    assert errors == {"sae_death": ["'Results in death' goes with the outcome 'fatal' (grade 5)."]}


@pytest.mark.parametrize("grade", [0, 6, None])
def test_grade_outside_1_to_5_is_refused(world, patient, grade):
    errors = refused(world, patient, ae_values(ctcae_grade=grade))
    assert set(errors) == {"ctcae_grade"}


# -- seriousness ----------------------------------------------------------------------------


def test_serious_event_without_a_criterion_is_refused(world, patient):
    errors = refused(world, patient, ae_values(serious=True))
    assert errors == {"serious": ["A serious event needs at least one seriousness criterion."]}


@pytest.mark.parametrize("criterion", ["sae_hospitalisation", "sae_important_medical_event"])
def test_criterion_ticked_on_a_non_serious_event_is_refused(world, patient, criterion):
    errors = refused(world, patient, ae_values(**{criterion: True}))
    assert errors == {
        criterion: ["A seriousness criterion is ticked but the event is not marked serious."]
    }


# -- answers and codes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("term", ""),
        ("term", "   "),
        ("term", "x" * 201),
        ("term", "Nausea\nBcc: someone@example.org"),
        ("relatedness", "maybe"),
        ("relatedness", ""),
        ("action_taken", "stopped"),
        ("outcome", "dead"),
        ("expected", None),
        ("aware_at", None),
    ],
)
def test_missing_or_unknown_answer_is_refused(world, patient, field, value):
    errors = refused(world, patient, ae_values(**{field: value}))
    assert set(errors) == {field}


@pytest.mark.parametrize("field", ["meddra_llt_code", "meddra_pt_code"])
@pytest.mark.parametrize("code", ["1004708", "100470801", "1004708a", "10O47080", " 10047080"])
def test_meddra_code_that_is_not_8_digits_is_refused(world, patient, field, code):
    errors = refused(world, patient, ae_values(**{field: code}))
    assert set(errors) == {field}
    label = "MedDRA LLT code" if field == "meddra_llt_code" else "MedDRA PT code"
    assert errors[field] == [f"{label}: 8 digits (e.g. 10028813), or leave it empty."]


def test_meddra_codes_of_8_digits_are_kept(world, patient):
    values = ae_values(meddra_llt_code="10028813", meddra_pt_code="10028813")
    event = ae_create(patient=patient, by=world.alice, values=values)
    event.refresh_from_db()
    assert (event.meddra_llt_code, event.meddra_pt_code) == ("10028813", "10028813")


@pytest.mark.parametrize(
    "field, code, constraint",
    [
        ("meddra_llt_code", "1004708", "ae_meddra_llt_format"),
        ("meddra_pt_code", "1004708x", "ae_meddra_pt_format"),
    ],
)
def test_database_refuses_a_meddra_code_that_is_not_8_digits(
    world, patient, field, code, constraint
):
    values = ae_values(**{field: code})
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        AdverseEventFactory(patient=patient, created_by=world.alice, **values)
    assert not AdverseEvent.objects.exists()


@pytest.mark.parametrize(
    "values, constraint",
    [
        (ae_values(onset_date="2026/10/01"), "ae_onset_format"),
        (fatal(outcome="not_recovered", death_date=None), "ae_grade5_is_fatal"),
        (fatal(ctcae_grade=4), "ae_fatal_is_grade5"),
        (ae_values(death_date=date(2026, 10, 5)), "ae_death_date_if_fatal"),
        (fatal(sae_death=False, sae_hospitalisation=True), "ae_grade5_results_in_death"),
        (
            ae_values(serious=True, sae_death=True, ctcae_grade=4),
            "ae_results_in_death_is_fatal",
        ),
        (ae_values(serious=True, serious_aware_at=AWARE), "ae_serious_iff_criterion"),
        (ae_values(sae_disability=True), "ae_serious_iff_criterion"),
        (
            ae_values(serious=True, sae_disability=True, serious_aware_at=None),
            "ae_serious_aware_iff_serious",
        ),
        (ae_values(serious_aware_at=AWARE), "ae_serious_aware_iff_serious"),
        (
            ae_values(
                serious=True, sae_disability=True, serious_aware_at=AWARE - timedelta(minutes=1)
            ),
            "ae_serious_aware_after_aware",
        ),
        (ae_values(ongoing=True), "ae_ongoing_has_no_end"),
        (ae_values(ctcae_grade=6), "ae_grade_1_to_5"),
        (ae_values(relatedness="maybe"), "ae_relatedness_choice"),
        (ae_values(sponsor_relatedness="maybe"), "ae_sponsor_relatedness_choice"),
        (ae_values(action_taken="stopped"), "ae_action_choice"),
        (ae_values(outcome="dead"), "ae_outcome_choice"),
        (ae_values(term=""), "ae_has_term"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_database_refuses_what_the_rules_refuse(world, patient, values, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        AdverseEventFactory(patient=patient, created_by=world.alice, **values)
    assert not AdverseEvent.objects.exists()


def test_every_problem_is_reported_at_once(world, patient):
    values = ae_values(
        term="",
        onset_date="2026-10-01",
        end_date=date(2026, 9, 1),
        serious=True,
        meddra_pt_code="123",
    )
    errors = refused(world, patient, values)
    assert set(errors) == {"term", "end_date", "serious", "meddra_pt_code"}


# -- numbering and who records ---------------------------------------------------------------


def test_events_are_numbered_1_2_3_in_each_patients_log(world, patient):
    numbers = [
        ae_create(patient=patient, by=world.alice, values=ae_values(term=term)).number
        for term in ("Nausea", "Headache", "Rash")
    ]
    other = consent(
        patient_create(study=world.rct, site=world.bxp, by=world.alice, screening_date=CONSENT_DAY),
        by=world.alice,
    )
    first_of_other = ae_create(patient=other, by=world.alice, values=ae_values())
    assert numbers == [1, 2, 3]
    assert first_of_other.number == 1
    assert [e.label for e in AdverseEvent.objects.filter(patient=patient)] == [
        "AE-001",
        "AE-002",
        "AE-003",
    ]


def test_a_refused_event_does_not_use_up_a_number(world, patient):
    ae_create(patient=patient, by=world.alice, values=ae_values())
    refused(world, patient, ae_values(serious=True))
    assert ae_create(patient=patient, by=world.alice, values=ae_values()).number == 2


def test_coordinator_records_an_event(world, patient):
    event = ae_create(patient=patient, by=world.bob, values=ae_values())
    assert event.created_by == world.bob
    assert event.protocol_version == world.rct.current_protocol


@pytest.mark.parametrize("persona", ["monica", "charlie", "diane", "rene"])
def test_only_the_sites_staff_record_events(world, patient, persona):
    with pytest.raises(PermissionDenied):
        ae_create(patient=patient, by=getattr(world, persona), values=ae_values())
    assert not AdverseEvent.objects.exists()


def test_onset_after_the_end_of_study_is_refused(world, enrolled):
    from ecrf.patients.services import patient_end

    patient_end(
        patient=enrolled,
        by=world.alice,
        status="completed",
        end_date=date(2026, 10, 10),
        reason="M12 done",
    )
    errors = refused(
        world,
        enrolled,
        ae_values(
            onset_date="2026-10-11", end_date=date(2026, 10, 12), aware_at=at(2026, 10, 12, 8, 0)
        ),
    )
    assert errors == {
        "onset_date": ["Onset is after the patient's end of study (2026-10-10): the log is closed."]
    }
    # An event that began during the study is still recorded after its end.
    assert ae_create(patient=enrolled, by=world.alice, values=ae_values()).number == 1


def test_consent_day_onset_is_accepted(world, patient):
    values = ae_values(onset_date=CONSENT_DAY.isoformat())
    assert ae_problems(patient=patient, values=values) == {}
