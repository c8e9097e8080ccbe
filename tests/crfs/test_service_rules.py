"""crf_save runs the models' own rules, whoever calls it: the messages a direct call gets are
the ones the form shows, and the form itself runs no query to validate."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from ecrf.crfs.forms import crf_form_class
from ecrf.crfs.models import Demographics, Dlqi, MedicalHistory, Mrss, form_model
from ecrf.crfs.services import crf_save
from ecrf.patients.models import Patient, Visit
from ecrf.patients.services import patient_create
from ecrf.patients.visits import visit_record_date, visits_schedule_from_day0
from ecrf.scoring import ScoringInputError
from ecrf.scoring import mrss as mrss_scoring

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
CONSENTED = TODAY - timedelta(days=60)
DAY0 = TODAY - timedelta(days=40)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def patient(world) -> Patient:
    """Consented at SCR, enrolled (directly: the schedule is not under test), M0 and M1 begun."""
    alice = world.alice
    patient = patient_create(study=world.rct, site=world.bxp, by=alice, screening_date=CONSENTED)
    scr = visit_record_date(visit=patient.visits.get(code="SCR"), by=alice, visit_date=CONSENTED)
    consent = {"consent_date": CONSENTED, "consent_version": "2.1", "signed_by_investigator": True}
    crf_save(visit=scr, form_code="consent", values=consent, by=alice, expected_version=0)
    Patient.objects.filter(pk=patient.pk).update(status=Patient.Status.ENROLLED, day0_date=DAY0)
    patient.refresh_from_db()
    visits_schedule_from_day0(patient=patient)
    for code, day in (("M0", DAY0), ("M1", DAY0 + timedelta(days=30))):
        patient.visits.filter(code=code).update(visit_date=day, status=Visit.Status.IN_PROGRESS)
    return patient


def form_errors(form_code: str, posted: dict) -> dict:
    form = crf_form_class(form_model(form_code))(posted)
    form.setup_crf(form_code=form_code, needs_reason=False)
    assert not form.is_valid()
    return {name: list(errors) for name, errors in form.errors.items()}


def service_errors(patient: Patient, code: str, form_code: str, values: dict, **kwargs) -> dict:
    visit = patient.visits.get(code=code)
    with pytest.raises(ValidationError) as refused:
        crf_save(visit=visit, form_code=form_code, values=values, by=patient.created_by, **kwargs)
    assert not form_model(form_code).objects.filter(visit=visit).exists()
    return refused.value.message_dict


@pytest.mark.parametrize(
    ("code", "form_code", "posted", "values", "expected"),
    [
        (
            "SCR", "echocardiography", {"lvef_pct": "95"}, {"lvef_pct": 95},
            {"lvef_pct": ["Ensure this value is less than or equal to 90."]},
        ),
        (
            "SCR", "mrss", {"forearm_r": "4"}, {"forearm_r": 4},
            {"forearm_r": ["Forearm, right: 4 is not allowed; choose 0, 1, 2 or 3."]},
        ),
        (
            "M0", "dlqi", {"q1": "NR"}, {"q1": "NR"},
            {"q1": ["1. itchy, sore, painful or stinging skin: NR is not allowed; "
                    "choose Very much, A lot, A little or Not at all."]},
        ),
        (
            "M0", "haq", {"pain_vas": "101"}, {"pain_vas": 101},
            {"pain_vas": ["Ensure this value is less than or equal to 100."]},
        ),
        (
            "SCR", "demographics", {"birth_month": "13", "initials": "J-P"},
            {"birth_month": 13, "initials": "J-P"},
            {
                "birth_month": ["Ensure this value is less than or equal to 12."],
                "initials": ["Up to 3 letters, nothing else."],
            },
        ),
        (
            "SCR", "safety_labs", {"neutrophils_x10e9_l": "-0.5"},
            {"neutrophils_x10e9_l": Decimal("-0.5")},
            {"neutrophils_x10e9_l": ["Ensure this value is greater than or equal to 0."]},
        ),
        (
            "M1", "drug_accountability", {"units_dispensed": "100", "units_returned": "120"},
            {"units_dispensed": 100, "units_returned": 120},
            {"units_returned": ["At most the 100 units dispensed."]},
        ),
    ],
)  # fmt: skip
def test_a_direct_call_is_refused_with_the_forms_messages(
    patient, code, form_code, posted, values, expected
):
    assert form_errors(form_code, posted) == expected
    assert service_errors(patient, code, form_code, values, expected_version=0) == expected


def test_every_problem_of_a_correction_comes_at_once(patient):
    scr = patient.visits.get(code="SCR")
    answers = {"lvef_pct": 62, "exam_date": CONSENTED}
    crf_save(visit=scr, form_code="echocardiography", values=answers, by=patient.created_by,
             expected_version=0)  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        crf_save(visit=scr, form_code="echocardiography", values={"lvef_pct": 5},
                 by=patient.created_by, expected_version=1)  # fmt: skip
    assert refused.value.message_dict == {
        "reason": [
            "Give the reason for change: the form was already saved, and every change to "
            "saved data is kept in the audit trail with its reason."
        ],
        "lvef_pct": ["Ensure this value is greater than or equal to 10."],
    }


@pytest.mark.parametrize(
    ("code", "form_code", "values", "hidden", "blank"),
    [
        ("M0", "dlqi", {"q7a": "yes", "q7b": "a_lot"}, "q7b", ""),
        ("SCR", "demographics", {"sex": "M", "childbearing_potential": False},
         "childbearing_potential", None),
    ],
)  # fmt: skip
def test_an_answer_its_condition_hides_is_not_kept(patient, code, form_code, values, hidden, blank):
    visit = patient.visits.get(code=code)
    saved = crf_save(
        visit=visit, form_code=form_code, values=values, by=patient.created_by, expected_version=0
    )
    saved.refresh_from_db()
    assert getattr(saved, hidden) == blank
    # Hidden on the page too: the same answers posted are blanked the same way.
    form = crf_form_class(type(saved))({k: str(v).lower() if isinstance(v, bool) else v
                                        for k, v in values.items()})  # fmt: skip
    form.setup_crf(form_code=form_code, needs_reason=False)
    assert form.is_valid(), form.errors
    assert form.values()[hidden] == blank


def test_a_hidden_answer_is_cleared_when_its_condition_no_longer_holds(patient):
    m0 = patient.visits.get(code="M0")
    by = patient.created_by
    answers = {"q7a": "no", "q7b": "a_lot"}
    crf_save(visit=m0, form_code="dlqi", values=answers, by=by, expected_version=0)
    saved = crf_save(visit=m0, form_code="dlqi", values={"q7a": "yes"}, by=by,
                     expected_version=1, reason="q7 misread on the sheet")  # fmt: skip
    assert (Dlqi.objects.get(pk=saved.pk).q7a, Dlqi.objects.get(pk=saved.pk).q7b) == ("yes", "")


def test_answers_the_score_refuses_are_refused_before_the_save(patient, monkeypatch):
    # No answer the fields accept is refused by the score today: the check is a net.
    def score(self):
        return mrss_scoring.score({**dict.fromkeys(mrss_scoring.AREAS, 1), "face": 7})

    monkeypatch.setattr(Mrss, "score", score)
    with pytest.raises(ScoringInputError) as scored:
        score(None)
    values = dict.fromkeys(mrss_scoring.AREAS, 1)
    assert service_errors(patient, "SCR", "mrss", values, expected_version=0) == {
        "__all__": [str(scored.value)]
    }


def test_a_rule_only_the_database_checks_is_a_message_on_its_field(patient):
    values = {
        "interfering_treatment_name": "methotrexate",
        "interfering_treatment_start_date": CONSENTED - timedelta(days=100),
        "interfering_treatment_end_date": CONSENTED - timedelta(days=200),
    }
    assert service_errors(patient, "SCR", "medical_history", values, expected_version=0) == {
        "interfering_treatment_end_date": ["The treatment cannot end before it started."]
    }
    assert not MedicalHistory.objects.exists()


def test_fields_the_service_sets_cannot_be_given(patient):
    errors = service_errors(patient, "SCR", "mrss", {"total": 3, "face": 1}, expected_version=0)
    assert errors == {"__all__": ["Not fields of this form: total."]}


def test_the_form_runs_no_query_to_validate(django_assert_num_queries):
    posted = {
        "exam_date": "2026-03-02",
        "assessor": "Dr Martin",
        **dict.fromkeys(mrss_scoring.AREAS, "2"),
    }
    form = crf_form_class(Mrss)(posted)
    form.setup_crf(form_code="mrss", needs_reason=False)
    with django_assert_num_queries(0):
        assert form.is_valid(), form.errors
    assert not Demographics.objects.exists()
