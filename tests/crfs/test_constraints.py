"""Out-of-range values: a form names the field and the allowed range, and the database
refuses them even when the form is bypassed."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import IntegrityError, transaction
from django.forms import modelform_factory
from django.utils import translation

from ecrf.crfs.models import (
    Demographics,
    Dlqi,
    DrugAccountability,
    Echocardiography,
    Haq,
    MdmCytokines,
    MdmFlow,
    Mrss,
    SafetyLabs,
)
from ecrf.scoring import mrss
from tests.crfs.conftest import make_visit

pytestmark = pytest.mark.django_db


def refused(queryset, **values) -> bool:
    try:
        with transaction.atomic():
            queryset.update(**values)
    except IntegrityError:
        return True
    return False


@pytest.mark.parametrize(
    ("model", "saved", "bad"),
    [
        (Mrss, {}, {"face": 4}),  # integer scale
        (Mrss, {}, {"total": 52}),  # derived value
        (Echocardiography, {}, {"lvef_pct": 95}),
        (Haq, {}, {"pain_vas": 101}),
        (Haq, {}, {"di": 3.5}),
        (SafetyLabs, {}, {"platelets_x10e9_l": -1}),  # concentration >= 0
        (SafetyLabs, {}, {"bilirubin_umol_l_uln": 0}),  # a ULN divides: never 0
        (Demographics, {}, {"birth_year": 1899}),
        (Demographics, {}, {"birth_month": 13}),
        (Demographics, {}, {"sex": "X"}),  # choices
        (Demographics, {}, {"initials": "J-P"}),
        (Dlqi, {}, {"q1": "NR"}),  # no "not relevant" on q1
        (Dlqi, {"q7a": "yes"}, {"q7b": "a_lot"}),  # q7b only after q7a "no"
        (Demographics, {"sex": "M"}, {"childbearing_potential": False}),
        (DrugAccountability, {"units_dispensed": 100}, {"units_returned": 101}),
        (MdmCytokines, {"condition": "untreated"}, {"ccl18_pg_ml": -1}),
        (MdmCytokines, {"condition": "untreated", "il6_below_lod": True}, {"il6_pg_ml": 0}),
        (MdmCytokines, {"condition": "untreated"}, {"ruxolitinib_nm": 100}),
        (MdmCytokines, {"condition": "untreated"}, {"condition": "other"}),
        (MdmFlow, {"condition": "ruxolitinib"}, {"cd206_pos_pct": 100.5}),
        (Mrss, {}, {"visit": None}),  # every form here belongs to a visit
    ],
)
def test_database_refuses_out_of_range_values_bypassing_the_form(make, model, saved, bad):
    form = make(model, **saved)
    assert refused(model.objects.filter(pk=form.pk), **bad)


def test_database_accepts_the_boundaries(make):
    form = make(Mrss)
    queryset = Mrss.objects.filter(pk=form.pk)
    # The total is the sum of the areas (a database check too: tests/crfs/test_stale_total.py).
    assert not refused(queryset, **dict.fromkeys(mrss.AREAS, 3), total=51)
    assert not refused(queryset, **dict.fromkeys(mrss.AREAS, 0), total=0)


def test_save_with_a_value_outside_the_scale_fails_in_the_database_not_in_scoring(make):
    with pytest.raises(IntegrityError):
        make(Mrss, **{"face": 4})


def test_serum_donor_is_named_for_healthy_donor_conditions_only(world, make):
    ssc, hd = world.ren_patients
    lab = make_visit(hd, code="LAB")
    make(MdmCytokines, at=lab, condition="hd_serum_ruxolitinib", serum_donor=ssc)
    untreated = make(MdmCytokines, at=lab, condition="untreated")
    assert refused(MdmCytokines.objects.filter(pk=untreated.pk), serum_donor=ssc)


def test_participant_is_not_their_own_serum_donor(world, make):
    ssc, hd = world.ren_patients
    form = make(MdmFlow, at=make_visit(hd, code="LAB"), condition="hd_serum_untreated")
    assert refused(MdmFlow.objects.filter(pk=form.pk), serum_donor=hd)


def test_one_form_per_visit(make):
    make(Mrss)
    with pytest.raises(IntegrityError):
        make(Mrss)


def test_culture_forms_are_one_per_visit_and_condition(world, make):
    lab = make_visit(world.ren_patients[0], code="LAB")
    for condition in ("untreated", "ruxolitinib"):
        make(MdmCytokines, at=lab, condition=condition)
    with pytest.raises(IntegrityError):
        make(MdmCytokines, at=lab, condition="untreated")


def errors(model, **data) -> dict:
    """The form's errors, in English (the project's default language is French)."""
    form_class = modelform_factory(model, fields=list(data))
    form = form_class(data=data)
    with translation.override("en"):
        assert not form.is_valid()
        return {field: list(messages) for field, messages in form.errors.items()}


def test_form_names_the_field_and_its_range():
    assert errors(Echocardiography, lvef_pct=95) == {
        "lvef_pct": ["Ensure this value is less than or equal to 90."]
    }
    assert errors(Echocardiography, lvef_pct=5) == {
        "lvef_pct": ["Ensure this value is greater than or equal to 10."]
    }
    assert errors(Haq, pain_vas=101) == {
        "pain_vas": ["Ensure this value is less than or equal to 100."]
    }
    assert errors(Demographics, birth_month=13) == {
        "birth_month": ["Ensure this value is less than or equal to 12."]
    }
    assert errors(SafetyLabs, neutrophils_x10e9_l="-0.5") == {
        "neutrophils_x10e9_l": ["Ensure this value is greater than or equal to 0."]
    }


def test_form_refuses_a_value_outside_a_scale():
    assert errors(Mrss, face=4) == {
        "face": ["Select a valid choice. 4 is not one of the available choices."]
    }
    assert "q1" in errors(Dlqi, q1="NR")


def test_form_reports_cross_field_rules_on_the_field():
    assert errors(Dlqi, q7a="yes", q7b="a_lot") == {"q7b": ['Answer 7b only when 7a is "no".']}
    assert errors(Demographics, sex="M", childbearing_potential="false") == {
        "childbearing_potential": ["Leave blank for men."]
    }
    assert errors(DrugAccountability, units_dispensed=100, units_returned=120) == {
        "units_returned": ["At most the 100 units dispensed."]
    }


def test_form_reports_a_value_entered_below_the_limit_of_detection():
    form_errors = errors(MdmCytokines, condition="untreated", il6_pg_ml="0", il6_below_lod="on")
    assert form_errors == {"__all__": ["A value below the LOD is ticked, not entered."]}


def test_form_accepts_a_partial_entry(make, visit):
    form_class = modelform_factory(Mrss, fields=["exam_date", "face", "anterior_chest"])
    form = form_class(data={"exam_date": "2026-03-02", "face": "1", "anterior_chest": ""})
    assert form.is_valid(), form.errors
    crf = form.save(commit=False)
    crf.patient, crf.visit, crf.protocol_version = visit.patient, visit, visit.protocol_version
    crf.entered_by = visit.patient.created_by
    crf.save()
    assert crf.exam_date == date(2026, 3, 2)
    assert (crf.face, crf.anterior_chest, crf.total) == (1, None, None)


def test_a_second_form_for_the_same_visit_is_refused_in_a_sentence():
    from django.utils import translation

    from ecrf.crfs.models import Mrss

    with translation.override("en"):
        message = Mrss().unique_error_message(Mrss, ("visit",)).messages[0]
    assert message == (
        "This visit already has its modified Rodnan skin score form: open it to change it."
    )
    assert "with this" not in message
