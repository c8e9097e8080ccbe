"""Modified Rodnan skin score: scoring.md section 1."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrf.scoring import ScoringInputError, mrss

AREAS = mrss.AREAS
FAST = settings(max_examples=200, deadline=None, database=None)


def all_areas(value: int | None) -> dict[str, int | None]:
    return dict.fromkeys(AREAS, value)


def test_the_17_areas_are_the_scoring_md_keys_in_table_order():
    assert AREAS == (
        "face",
        "anterior_chest",
        "abdomen",
        "fingers_r",
        "fingers_l",
        "hand_r",
        "hand_l",
        "forearm_r",
        "forearm_l",
        "upper_arm_r",
        "upper_arm_l",
        "thigh_r",
        "thigh_l",
        "lower_leg_r",
        "lower_leg_l",
        "foot_r",
        "foot_l",
    )


def test_all_areas_normal_score_zero():
    result = mrss.score(all_areas(0))
    assert (result.total, result.missing, result.reason) == (0, (), None)


def test_all_areas_severe_score_the_maximum_51():
    assert mrss.score(all_areas(3)).total == 51


def test_one_blank_area_makes_the_total_incomplete_without_proration():
    values = all_areas(1)
    values.update(face=2, anterior_chest=2, abdomen=2, fingers_r=2, foot_l=None)
    assert sum(v for v in values.values() if v is not None) == 20
    result = mrss.score(values)
    assert result.total is None
    assert result.reason == "incomplete"
    assert result.missing == ("foot_l",)


def test_an_absent_key_counts_as_blank():
    values = all_areas(2)
    del values["abdomen"]
    assert mrss.score(values).missing == ("abdomen",)


def test_missing_areas_are_listed_in_table_order_whatever_the_input_order():
    values = {area: 0 for area in reversed(AREAS) if area not in ("foot_r", "face", "thigh_l")}
    assert mrss.score(values).missing == ("face", "thigh_l", "foot_r")


def test_an_empty_form_lists_every_area_as_missing():
    assert mrss.score({}).missing == AREAS


@pytest.mark.parametrize("bad", [4, -1, 1.5, 2.0, True, False, "2"])
def test_a_value_outside_0_to_3_is_rejected_naming_the_area_and_the_allowed_values(bad):
    values = all_areas(0)
    values["hand_l"] = bad
    with pytest.raises(ScoringInputError) as excinfo:
        mrss.score(values)
    message = str(excinfo.value)
    assert "'hand_l'" in message
    assert "0, 1, 2, 3 or None" in message
    assert excinfo.value.key == "hand_l"


def test_an_unknown_area_is_rejected_naming_it_and_the_allowed_keys():
    with pytest.raises(ScoringInputError, match=r"unknown key 'nose'.*'face'.*'foot_l'"):
        mrss.score({**all_areas(0), "nose": 1})


def test_scoring_input_error_is_a_value_error():
    with pytest.raises(ValueError, match="mrss"):
        mrss.score({"face": 9})


def test_the_result_is_frozen():
    result = mrss.score(all_areas(0))
    with pytest.raises(AttributeError):
        result.total = 3  # type: ignore[misc]


def test_percent_change_from_baseline_25_to_20_is_minus_20():
    assert mrss.percent_change(25, 20) == -20.0


def test_percent_change_is_positive_when_the_skin_worsens():
    assert mrss.percent_change(20, 30) == 50.0


@pytest.mark.parametrize(("baseline", "value"), [(None, 20), (25, None), (None, None), (0, 10)])
def test_percent_change_is_none_without_both_totals_or_with_a_zero_baseline(baseline, value):
    assert mrss.percent_change(baseline, value) is None


@pytest.mark.parametrize(
    ("baseline", "value", "key"), [(52, 10, "baseline"), (10, -1, "value"), (True, 10, "baseline")]
)
def test_percent_change_rejects_a_total_outside_0_to_51(baseline, value, key):
    with pytest.raises(ScoringInputError, match=rf"'{key}'.*0\.\.51"):
        mrss.percent_change(baseline, value)


area_scores = st.integers(min_value=0, max_value=3)
complete_forms = st.fixed_dictionaries({area: area_scores for area in AREAS})
partial_forms = st.fixed_dictionaries({area: st.none() | area_scores for area in AREAS})


@FAST
@given(complete_forms)
def test_a_complete_form_totals_the_sum_of_its_areas(values):
    result = mrss.score(values)
    assert result.total == sum(values.values())
    assert 0 <= result.total <= 51


@FAST
@given(partial_forms)
def test_the_total_is_none_exactly_when_an_area_is_blank(values):
    result = mrss.score(values)
    blanks = tuple(area for area in AREAS if values[area] is None)
    assert result.missing == blanks
    assert (result.total is None) == bool(blanks)
    assert (result.reason == "incomplete") == bool(blanks)
