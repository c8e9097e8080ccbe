"""2019 EULAR/ACR classification criteria for SLE: scoring.md section 5."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrf.scoring import ScoringInputError, sle2019

FAST = settings(max_examples=200, deadline=None, database=None)
FINDINGS = tuple(key for key in sle2019.KEYS if key != "ana_positive")
CLINICAL = {key for sub in sle2019.CLINICAL_DOMAINS.values() for key in sub}
IMMUNOLOGIC_OF_SCORING_MD = {"antiphospholipid", "low_c3", "low_c4", "anti_dsdna", "anti_smith"}
CLINICAL_OF_SCORING_MD = set(FINDINGS) - IMMUNOLOGIC_OF_SCORING_MD


def ana_positive(*present: str) -> dict[str, bool]:
    return dict.fromkeys(("ana_positive", *present), True)


def test_the_clinical_findings_are_all_but_the_immunologic_ones():
    assert CLINICAL == CLINICAL_OF_SCORING_MD
    assert len(FINDINGS) == 22


def test_without_positive_ana_the_criteria_do_not_apply_whatever_the_findings():
    result = sle2019.score(dict.fromkeys(FINDINGS, True) | {"ana_positive": False})
    assert result.status == "entry_criterion_not_met"
    assert (result.points, result.classified) == (None, False)
    assert result.has_clinical is True


def test_an_unrecorded_ana_does_not_meet_the_entry_criterion():
    result = sle2019.score({"fever": True, "joint_involvement": True, "anti_dsdna": True})
    assert result.status == "entry_criterion_not_met"
    assert result.points is None


def test_the_classified_worked_example_scores_18():
    result = sle2019.score(
        ana_positive(
            "fever",
            "leukopenia",
            "thrombocytopenia",
            "oral_ulcers",
            "acute_cutaneous_lupus",
            "joint_involvement",
        )
    )
    assert (result.points, result.classified, result.status) == (18, True, "classified")
    assert result.domains["hematologic"] == 4
    assert result.domains["mucocutaneous"] == 6


def test_the_not_classified_worked_example_scores_7():
    result = sle2019.score(ana_positive("low_c3", "antiphospholipid", "oral_ulcers", "alopecia"))
    assert (result.points, result.classified, result.status) == (7, False, "not_classified")
    assert result.has_clinical is True


@pytest.mark.parametrize(
    ("present", "points"),
    [(("low_c3",), 3), (("low_c4",), 3), (("low_c3", "low_c4"), 4)],
)
def test_low_c3_or_c4_alone_scores_3_and_both_4(present, points):
    result = sle2019.score(ana_positive(*present))
    assert result.points == result.domains["complement"] == points


@pytest.mark.parametrize(
    ("finding", "points"),
    [
        ("fever", 2),
        ("leukopenia", 3),
        ("thrombocytopenia", 4),
        ("autoimmune_hemolysis", 4),
        ("delirium", 2),
        ("psychosis", 3),
        ("seizure", 5),
        ("alopecia", 2),
        ("oral_ulcers", 2),
        ("subacute_or_discoid_lupus", 4),
        ("acute_cutaneous_lupus", 6),
        ("pleural_or_pericardial_effusion", 5),
        ("acute_pericarditis", 6),
        ("joint_involvement", 6),
        ("proteinuria", 4),
        ("lupus_nephritis_class_2_or_5", 8),
        ("lupus_nephritis_class_3_or_4", 10),
        ("antiphospholipid", 2),
        ("low_c3", 3),
        ("low_c4", 3),
        ("anti_dsdna", 6),
        ("anti_smith", 6),
    ],
)
def test_each_finding_alone_scores_its_published_weight(finding, points):
    result = sle2019.score(ana_positive(finding))
    assert result.points == points
    assert result.has_clinical == (finding in CLINICAL_OF_SCORING_MD)


def test_anti_dsdna_and_anti_smith_together_count_once():
    assert sle2019.score(ana_positive("anti_dsdna", "anti_smith")).points == 6


def test_immunologic_criteria_alone_never_classify_even_above_10():
    result = sle2019.score(
        ana_positive("anti_dsdna", "anti_smith", "low_c3", "low_c4", "antiphospholipid")
    )
    assert result.points == 12
    assert result.has_clinical is False
    assert (result.classified, result.status) == (False, "not_classified")


def test_one_clinical_criterion_with_10_points_classifies():
    result = sle2019.score(ana_positive("lupus_nephritis_class_3_or_4"))
    assert (result.points, result.has_clinical, result.classified) == (10, True, True)


def test_9_points_with_a_clinical_criterion_is_not_classified():
    result = sle2019.score(ana_positive("seizure", "proteinuria"))
    assert (result.points, result.classified) == (9, False)


def test_ana_alone_scores_0():
    result = sle2019.score(ana_positive())
    assert (result.points, result.has_clinical, result.status) == (0, False, "not_classified")


def test_every_finding_scores_the_maximum_51():
    result = sle2019.score(ana_positive(*FINDINGS))
    assert result.points == sle2019.MAX_POINTS == 51
    assert result.domains == {
        "constitutional": 2,
        "hematologic": 4,
        "neuropsychiatric": 5,
        "mucocutaneous": 6,
        "serosal": 6,
        "musculoskeletal": 6,
        "renal": 10,
        "antiphospholipid": 2,
        "complement": 4,
        "sle_specific_antibodies": 6,
    }


@pytest.mark.parametrize("value", [1, "positive", 0.0])
def test_a_non_boolean_finding_is_rejected_naming_key_and_allowed_values(value):
    with pytest.raises(ScoringInputError) as excinfo:
        sle2019.score({"ana_positive": value})
    assert f"'ana_positive' = {value!r}" in str(excinfo.value)
    assert "True, False or None" in str(excinfo.value)


def test_an_unknown_finding_is_rejected_naming_it_and_the_allowed_keys():
    with pytest.raises(ScoringInputError) as excinfo:
        sle2019.score(ana_positive() | {"low_complement": True})
    assert "unknown key 'low_complement'" in str(excinfo.value)
    assert "'low_c3', 'low_c4'" in str(excinfo.value)


finding_sets = st.fixed_dictionaries(
    {"ana_positive": st.just(True)}, optional={key: st.booleans() for key in FINDINGS}
)


@FAST
@given(finding_sets)
def test_points_stay_in_range_and_classification_needs_10_points_and_a_clinical_criterion(
    recorded,
):
    result = sle2019.score(recorded)
    assert 0 <= result.points <= 51
    assert result.has_clinical == any(recorded.get(key) for key in CLINICAL)
    assert result.classified == (result.points >= 10 and result.has_clinical)


@FAST
@given(finding_sets, st.sampled_from(FINDINGS))
def test_adding_a_finding_never_lowers_the_points(recorded, key):
    before = sle2019.score(recorded)
    after = sle2019.score(recorded | {key: True})
    assert after.points >= before.points
    assert after.classified >= before.classified
