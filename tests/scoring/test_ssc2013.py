"""2013 ACR/EULAR classification criteria for systemic sclerosis: scoring.md section 4."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrf.scoring import ScoringInputError, ssc2013

FAST = settings(max_examples=200, deadline=None, database=None)
FINDINGS = tuple(key for sub in ssc2013.ITEMS.values() for key in sub)


def findings(*present: str, **recorded: bool) -> dict[str, bool]:
    return dict.fromkeys(present, True) | recorded


def test_item_1_alone_is_sufficient():
    result = ssc2013.score(findings("skin_thickening_proximal_mcp"))
    assert (result.points, result.sufficient, result.classified) == (0, True, True)
    assert result.status == "classified"


def test_puffy_fingers_sclerodactyly_raynaud_and_anti_centromere_score_10_classified():
    result = ssc2013.score(findings("puffy_fingers", "sclerodactyly", "raynaud", "anti_centromere"))
    assert (result.points, result.sufficient, result.classified) == (10, False, True)
    assert result.status == "classified"


def test_puffy_fingers_raynaud_and_abnormal_capillaries_score_7_not_classified():
    result = ssc2013.score(findings("puffy_fingers", "raynaud", "abnormal_nailfold_capillaries"))
    assert (result.points, result.classified, result.status) == (7, False, "not_classified")


def test_fingers_spared_makes_the_criteria_not_applicable_rather_than_not_ssc():
    result = ssc2013.score(findings("fingers_spared", "sclerodactyly", "raynaud", "ild"))
    assert result.status == "not_applicable"
    assert result.classified is None
    assert result.points == 9  # still computed, for information


def test_a_disorder_explaining_the_findings_better_makes_them_not_applicable():
    result = ssc2013.score(
        findings("better_explained_by_other_disorder", "skin_thickening_proximal_mcp")
    )
    assert (result.status, result.classified, result.sufficient) == ("not_applicable", None, True)


def test_no_finding_scores_0_not_classified():
    result = ssc2013.score({})
    assert (result.points, result.sufficient, result.classified) == (0, False, False)
    assert result.status == "not_classified"


def test_false_and_none_count_as_absent():
    result = ssc2013.score(findings("raynaud", pah=False, ild=None, fingers_spared=False))
    assert (result.points, result.status) == (3, "not_classified")


def test_every_finding_scores_the_maximum_19():
    result = ssc2013.score(findings("skin_thickening_proximal_mcp", *FINDINGS))
    assert result.points == ssc2013.MAX_POINTS == 19
    assert result.items == {
        "skin_thickening_fingers": 4,
        "fingertip_lesions": 3,
        "telangiectasia": 2,
        "abnormal_nailfold_capillaries": 2,
        "pah_or_ild": 2,
        "raynaud": 3,
        "ssc_autoantibodies": 3,
    }


@pytest.mark.parametrize(
    ("present", "points"),
    [
        (("puffy_fingers",), 2),
        (("sclerodactyly",), 4),
        (("puffy_fingers", "sclerodactyly"), 4),
        (("digital_tip_ulcers",), 2),
        (("fingertip_pitting_scars",), 3),
        (("digital_tip_ulcers", "fingertip_pitting_scars"), 3),
        (("pah",), 2),
        (("ild",), 2),
        (("pah", "ild"), 2),
        (("anti_centromere",), 3),
        (("anti_centromere", "anti_topoisomerase", "anti_rna_pol3"), 3),
        (("telangiectasia",), 2),
        (("abnormal_nailfold_capillaries",), 2),
        (("raynaud",), 3),
    ],
)
def test_an_item_counts_its_highest_sub_item_only(present, points):
    assert ssc2013.score(findings(*present)).points == points


def test_8_points_is_not_classified_and_9_is():
    eight = findings("sclerodactyly", "telangiectasia", "ild")
    assert ssc2013.score(eight).points == 8
    assert ssc2013.score(eight).classified is False
    nine = findings("sclerodactyly", "telangiectasia", "raynaud")
    assert ssc2013.score(nine).points == 9
    assert ssc2013.score(nine).classified is True


@pytest.mark.parametrize("value", [1, 0, "yes", "true"])
def test_a_non_boolean_finding_is_rejected_naming_key_and_allowed_values(value):
    with pytest.raises(ScoringInputError) as excinfo:
        ssc2013.score({"raynaud": value})
    assert f"'raynaud' = {value!r}" in str(excinfo.value)
    assert "True, False or None" in str(excinfo.value)


def test_an_unknown_finding_is_rejected_naming_it_and_the_allowed_keys():
    with pytest.raises(ScoringInputError) as excinfo:
        ssc2013.score({"anti_scl70": True})
    assert "unknown key 'anti_scl70'" in str(excinfo.value)
    assert "'anti_topoisomerase'" in str(excinfo.value)
    assert "'fingers_spared'" in str(excinfo.value)


finding_sets = st.fixed_dictionaries({}, optional={key: st.booleans() for key in ssc2013.KEYS})


@FAST
@given(finding_sets)
def test_points_stay_in_range_and_classification_follows_the_threshold(recorded):
    result = ssc2013.score(recorded)
    assert 0 <= result.points <= 19
    if result.status == "not_applicable":
        assert result.classified is None
    else:
        assert result.classified == (result.sufficient or result.points >= 9)


@FAST
@given(finding_sets, st.sampled_from(ssc2013.KEYS))
def test_adding_a_finding_never_lowers_the_points(recorded, key):
    before = ssc2013.score(recorded)
    after = ssc2013.score(recorded | {key: True})
    assert after.points >= before.points
