"""Scores, classifications and compliance are stored on save, from ecrf.scoring."""

from __future__ import annotations

from datetime import date

import pytest

from ecrf.crfs.models import (
    Dlqi,
    DrugAccountability,
    DrugDispensing,
    Haq,
    Mrss,
    SleClassification,
    SscClassification,
    compute_compliance_pct,
)
from ecrf.scoring import haq, mrss
from tests.crfs.conftest import make_visit

pytestmark = pytest.mark.django_db

ALL_TWO = {area: 2 for area in mrss.AREAS}


def test_mrss_total_is_stored_on_save(make):
    form = make(Mrss, **ALL_TWO)
    form.refresh_from_db()
    assert form.total == 34


def test_mrss_with_one_blank_area_has_no_total(make):
    form = make(Mrss, **{**ALL_TWO, "foot_l": None}, not_assessable_reason="dressing")
    form.refresh_from_db()
    assert form.total is None


def test_mrss_total_follows_a_changed_area(make):
    form = make(Mrss, **{**ALL_TWO, "foot_l": None})
    form.foot_l = 3
    form.save()
    form.refresh_from_db()
    assert form.total == 35
    form.face = 0
    form.save()
    form.refresh_from_db()
    assert form.total == 33


# scoring.md example: 3, 2, 1, NR, 2, 0, (q7a no, q7b a little), 1, NR, 2 -> 12, very_large
DLQI_EXAMPLE = {
    "q1": "very_much",
    "q2": "a_lot",
    "q3": "a_little",
    "q4": "NR",
    "q5": "a_lot",
    "q6": "not_at_all",
    "q7a": "no",
    "q7b": "a_little",
    "q8": "a_little",
    "q9": "NR",
    "q10": "a_lot",
}


def test_dlqi_total_and_band_are_stored(make):
    form = make(Dlqi, **DLQI_EXAMPLE)
    form.refresh_from_db()
    assert (form.total, form.band, form.imputed_items) == (12, "very_large", 0)


def test_dlqi_with_one_missing_item_imputes_it(make):
    form = make(Dlqi, **{**DLQI_EXAMPLE, "q1": ""})
    form.refresh_from_db()
    assert (form.total, form.band, form.imputed_items) == (9, "moderate", 1)


def test_dlqi_with_two_missing_items_is_not_calculable(make):
    form = make(Dlqi, **{**DLQI_EXAMPLE, "q4": "", "q9": ""})
    form.refresh_from_db()
    assert (form.total, form.band, form.imputed_items) == (None, "", 0)


def test_dlqi_q7b_blank_after_q7a_no_counts_as_the_missing_item(make):
    form = make(Dlqi, **{**DLQI_EXAMPLE, "q7b": ""})
    form.refresh_from_db()
    assert (form.total, form.imputed_items) == (11, 1)
    assert "q7b" in form.missing_fields()


def test_dlqi_total_follows_a_changed_answer(make):
    form = make(Dlqi, **DLQI_EXAMPLE)
    form.q7a, form.q7b = "yes", ""
    form.save()
    form.refresh_from_db()
    assert (form.total, form.band) == (14, "very_large")


ALL_ZERO = {item: 0 for item in haq.ITEMS}


def test_haq_disability_index_and_vas_scores_are_stored(make):
    # scoring.md: eating and reach blank; dressing 1, arising 0, walking 2, hygiene 1,
    # grip 1, activities 2 -> 7/6.
    answers = {
        **ALL_ZERO,
        "dress": 1,
        "walk_outdoors": 2,
        "toilet": 1,
        "open_jars": 1,
        "chores": 2,
        "cut_meat": None,
        "lift_cup": None,
        "open_carton": None,
        "reach_object": None,
        "bend_down": None,
    }
    form = make(Haq, **answers, pain_vas=40, global_vas=0, raynaud_vas=30, gi_vas=100)
    form.refresh_from_db()
    assert form.di == pytest.approx(7 / 6)
    assert round(form.di, 3) == 1.167
    assert form.di_without_aids == pytest.approx(7 / 6)
    assert (form.pain_score, form.global_score) == (1.2, 0.0)
    assert (form.raynaud_score, form.gi_score) == (0.9, 3.0)
    assert (form.digital_ulcer_score, form.breathing_score) == (None, None)
    assert form.disease_severity_score is None


def test_haq_aids_raise_the_disability_index_only_with_aids(make):
    form = make(Haq, **ALL_ZERO, aid_cane=True, help_grip=True, aid_other="grab rail")
    form.refresh_from_db()
    assert form.di == 0.5  # walking and grip raised to 2: 4 / 8
    assert form.di_without_aids == 0.0


def test_haq_with_five_categories_has_no_index(make):
    answers = {**ALL_ZERO, **{item: None for item in haq.CATEGORIES["dressing"]}}
    answers.update({item: None for item in haq.CATEGORIES["eating"]})
    answers.update({item: None for item in haq.CATEGORIES["grip"]})
    form = make(Haq, **answers)
    form.refresh_from_db()
    assert (form.di, form.di_without_aids) == (None, None)


def test_haq_index_follows_a_ticked_aid(make):
    form = make(Haq, **ALL_ZERO)
    assert form.di == 0.0
    form.aid_wheelchair = True
    form.save()
    form.refresh_from_db()
    assert form.di == 0.25


def test_ssc_classified_on_points(make, cohort_visit):
    form = make(
        SscClassification,
        at=cohort_visit,
        puffy_fingers=True,
        sclerodactyly=True,
        raynaud=True,
        anti_centromere=True,
    )
    form.refresh_from_db()
    assert (form.points, form.sufficient, form.classification) == (10, False, "classified")
    assert form.classified is True


def test_ssc_not_classified_below_nine_points(make, cohort_visit):
    form = make(
        SscClassification,
        at=cohort_visit,
        puffy_fingers=True,
        raynaud=True,
        abnormal_nailfold_capillaries=True,
    )
    form.refresh_from_db()
    assert (form.points, form.classification, form.classified) == (7, "not_classified", False)


def test_ssc_classified_on_the_sufficient_item_and_not_applicable_when_fingers_spared(
    make, cohort_visit
):
    form = make(SscClassification, at=cohort_visit, skin_thickening_proximal_mcp=True)
    assert (form.points, form.sufficient, form.classification) == (0, True, "classified")
    form.fingers_spared = True
    form.save()
    form.refresh_from_db()
    assert (form.classification, form.classified) == ("not_applicable", None)


def test_sle_without_ana_does_not_meet_the_entry_criterion(make, cohort_visit):
    form = make(
        SleClassification,
        at=cohort_visit,
        ana_positive=False,
        fever=True,
        acute_cutaneous_lupus=True,
        joint_involvement=True,
    )
    form.refresh_from_db()
    assert (form.points, form.classification, form.classified) == (
        None,
        "entry_criterion_not_met",
        False,
    )
    assert form.has_clinical is True
    assert form.missing_fields() == []  # the other findings no longer matter


def test_sle_classified_and_recomputed_when_ana_is_corrected(make, cohort_visit):
    # scoring.md: fever, leukopenia + thrombocytopenia, oral ulcers + acute cutaneous lupus,
    # joints -> 2 + 4 + 6 + 6 = 18.
    findings = {
        "fever": True,
        "leukopenia": True,
        "thrombocytopenia": True,
        "oral_ulcers": True,
        "acute_cutaneous_lupus": True,
        "joint_involvement": True,
    }
    form = make(SleClassification, at=cohort_visit, ana_positive=False, **findings)
    form.ana_positive = True
    form.save()
    form.refresh_from_db()
    assert (form.points, form.has_clinical, form.classification) == (18, True, "classified")


def test_sle_immunologic_findings_alone_are_not_classified(make, cohort_visit):
    form = make(
        SleClassification,
        at=cohort_visit,
        ana_positive=True,
        low_c3=True,
        low_c4=True,
        anti_dsdna=True,
    )
    assert (form.points, form.has_clinical, form.classification) == (10, False, "not_classified")


def test_compliance_is_units_taken_over_units_prescribed_since_dispensing(world, make, visit):
    make(
        DrugDispensing,
        kit_number="K-1001",
        dispensing_date=date(2026, 3, 2),
        units_dispensed=200,
        expected_units_per_day=4,
    )
    m1 = make_visit(visit.patient, code="M1", sequence=2)
    form = make(
        DrugAccountability,
        at=m1,
        kit_number="K-1001",
        accountability_date=date(2026, 4, 1),
        units_dispensed=200,
        units_returned=90,
    )
    form.refresh_from_db()
    assert form.compliance_pct == 91.7  # 110 taken / (4 a day x 30 days)
    form.units_returned = 80
    form.save()
    assert form.compliance_pct == 100.0


def test_compliance_is_blank_without_the_dispensing_of_that_kit(make, visit):
    make(
        DrugDispensing,
        kit_number="K-1001",
        dispensing_date=date(2026, 3, 2),
        units_dispensed=200,
        expected_units_per_day=4,
    )
    m1 = make_visit(visit.patient, code="M1", sequence=2)
    form = make(
        DrugAccountability,
        at=m1,
        kit_number="K-9999",
        accountability_date=date(2026, 4, 1),
        units_dispensed=200,
        units_returned=90,
    )
    assert form.compliance_pct is None


@pytest.mark.parametrize(
    ("dispensed", "returned", "per_day", "days", "expected"),
    [
        (120, 0, 4, 30, 100.0),
        (120, 60, 4, 30, 50.0),
        (120, 0, 4, 20, 150.0),  # took more than prescribed
        (120, None, 4, 30, None),
        (120, 0, None, 30, None),
        (120, 0, 4, 0, None),  # counted on the day of dispensing
        (120, 0, 4, -3, None),
    ],
)
def test_compliance_formula(dispensed, returned, per_day, days, expected):
    assert (
        compute_compliance_pct(
            units_dispensed=dispensed,
            units_returned=returned,
            expected_units_per_day=per_day,
            days=days,
        )
        == expected
    )
