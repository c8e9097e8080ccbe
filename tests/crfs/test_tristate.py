"""Yes/No questions that may stay unanswered, and choices refused by name."""

from __future__ import annotations

import pytest

from ecrf.crfs.forms import crf_form_class
from ecrf.crfs.models import Consent, Dlqi, Mrss


def bound(model, form_code, data, instance=None):
    form = crf_form_class(model)(data, instance=instance)
    form.setup_crf(form_code=form_code, needs_reason=False)
    return form


@pytest.mark.parametrize("answer", [True, False])
def test_a_stored_answer_is_rendered_checked(answer):
    form = bound(Consent, "consent", None, instance=Consent(signed_by_investigator=answer))
    html = str(form["signed_by_investigator"])
    value = "true" if answer else "false"
    assert (
        f'value="{value}" data-tristate="" id="id_signed_by_investigator_{1 - answer}" checked'
        in html
    )
    assert html.count("checked") == 1


@pytest.mark.parametrize(
    ("posted", "stored"), [("true", True), ("false", False), ("", None), ("unknown", None)]
)
def test_yes_no_or_not_answered_are_kept(posted, stored):
    form = bound(Consent, "consent", {"signed_by_investigator": posted})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["signed_by_investigator"] is stored


@pytest.mark.parametrize("posted", ["x" * 200_000, "NaN", "yes please", "2"])
def test_anything_else_is_refused_naming_the_field(posted, settings):
    settings.LANGUAGE_CODE = "en"
    form = bound(Consent, "consent", {"signed_by_investigator": posted})
    assert not form.is_valid()
    assert form.errors["signed_by_investigator"] == [
        "Signed by the investigator: answer Yes, No or Not answered."
    ]


@pytest.mark.django_db
def test_an_mrss_area_out_of_range_names_the_area_and_the_scores(settings):
    settings.LANGUAGE_CODE = "en"
    form = bound(Mrss, "mrss", {"face": "5"})
    assert not form.is_valid()
    assert form.errors["face"] == ["Face: 5 is not allowed; choose 0, 1, 2 or 3."]


@pytest.mark.django_db
def test_a_dlqi_answer_out_of_its_choices_names_the_question_and_the_answers(settings):
    settings.LANGUAGE_CODE = "en"
    form = bound(Dlqi, "dlqi", {"q1": "maybe"})
    assert not form.is_valid()
    assert form.errors["q1"] == [
        "1. itchy, sore, painful or stinging skin: maybe is not allowed; "
        "choose Very much, A lot, A little or Not at all."
    ]
