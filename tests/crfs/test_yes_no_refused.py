"""A yes/no answer is Yes, No or (where it may wait) not answered: crf_save refuses
anything else by the question's label, on every form, hidden by a condition or not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone, translation
from django.utils.text import capfirst

from ecrf.crfs.models import CRF_MODELS, Demographics, MedicalHistory
from ecrf.crfs.services import crf_save, yes_no_problems
from ecrf.patients.services import patient_create
from ecrf.patients.visits import visit_record_date

JUNK = ["x" * 200_000, "yes", "true", "True", "t", "1", 1, 0, "", "Yes", [True], {"a": 1}]
YES_NO_FIELDS = [
    (model, field)
    for model in CRF_MODELS
    for field in model._meta.concrete_fields
    if isinstance(field, models.BooleanField) and field.name in model.answer_fields()
]


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def test_the_forms_have_yes_no_questions_to_check():
    names = {(model.FORM_CODE, field.name) for model, field in YES_NO_FIELDS}
    assert ("demographics", "childbearing_potential") in names
    assert ("medical_history", "en_coup_de_sabre") in names
    assert len(names) > 10


@pytest.mark.parametrize(
    ("model", "field"),
    YES_NO_FIELDS,
    ids=[f"{model.FORM_CODE}.{field.name}" for model, field in YES_NO_FIELDS],
)
def test_every_yes_no_question_refuses_anything_but_yes_or_no(model, field):
    label = capfirst(str(field.verbose_name))
    for junk in JUNK:
        assert yes_no_problems(model, {field.name: junk}) == {
            field.name: [f"{label}: choose Yes or No."]
        }, junk if isinstance(junk, str) and len(junk) < 20 else type(junk)
    assert yes_no_problems(model, {field.name: True}) == {}
    assert yes_no_problems(model, {field.name: False}) == {}
    # Unanswered: only for a question that may wait (a tick box is never "not answered").
    assert (yes_no_problems(model, {field.name: None}) == {}) is field.null


@pytest.fixture
def scr(world):
    day = timezone.localdate() - timedelta(days=10)
    patient = patient_create(study=world.rct, site=world.bxp, by=world.alice, screening_date=day)
    visit = visit_record_date(visit=patient.visits.get(code="SCR"), by=world.alice, visit_date=day)
    consent = {"consent_date": day, "consent_version": "2.1", "signed_by_investigator": True}
    crf_save(visit=visit, form_code="consent", values=consent, by=world.alice, expected_version=0)
    return visit


@pytest.mark.django_db
def test_a_200_kb_childbearing_potential_is_refused_even_for_a_man(world, scr):
    # For a man the question is hidden, and a hidden answer is blanked: junk was dropped
    # silently before; now it is refused.
    with pytest.raises(ValidationError) as refused:
        crf_save(
            visit=scr,
            form_code="demographics",
            values={"birth_year": 1970, "sex": "M", "childbearing_potential": "x" * 200_000},
            by=world.alice,
            expected_version=0,
        )
    assert refused.value.message_dict == {
        "childbearing_potential": ["Childbearing potential: choose Yes or No."]
    }
    assert not Demographics.objects.filter(visit=scr).exists()


@pytest.mark.django_db
def test_a_200_kb_en_coup_de_sabre_is_refused_and_nothing_is_saved(world, scr):
    with pytest.raises(ValidationError) as refused:
        crf_save(
            visit=scr,
            form_code="medical_history",
            values={"diagnosis_year": 2020, "en_coup_de_sabre": "x" * 200_000},
            by=world.alice,
            expected_version=0,
        )
    assert refused.value.message_dict == {
        "en_coup_de_sabre": ['Scleroderma "en coup de sabre": choose Yes or No.']
    }
    assert not MedicalHistory.objects.filter(visit=scr).exists()


@pytest.mark.django_db
def test_yes_and_no_are_saved(world, scr):
    saved = crf_save(
        visit=scr,
        form_code="medical_history",
        values={"diagnosis_year": 2020, "en_coup_de_sabre": False, "ongoing_cancer": None},
        by=world.alice,
        expected_version=0,
    )
    saved.refresh_from_db()
    assert (saved.en_coup_de_sabre, saved.ongoing_cancer) == (False, None)
