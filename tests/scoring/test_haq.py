"""HAQ-DI, pain and global VAS and the SHAQ scales: scoring.md section 3."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrf.scoring import ScoringInputError, haq

FAST = settings(max_examples=200, deadline=None, database=None)
CATEGORIES = haq.CATEGORIES
ITEMS = tuple(item for items in CATEGORIES.values() for item in items)


def category_answers(**scores: int | None) -> dict[str, object]:
    """Every item of each named category set to the given score (None: category left blank)."""
    return {
        item: score
        for category, score in scores.items()
        for item in CATEGORIES[category]
        if score is not None
    }


def all_categories(score: int) -> dict[str, object]:
    return category_answers(**dict.fromkeys(CATEGORIES, score))


def test_the_categories_and_their_items_are_those_of_scoring_md():
    assert dict(CATEGORIES) == {
        "dressing": ("dress", "shampoo"),
        "arising": ("stand_up", "in_out_bed"),
        "eating": ("cut_meat", "lift_cup", "open_carton"),
        "walking": ("walk_outdoors", "climb_steps"),
        "hygiene": ("wash_body", "tub_bath", "toilet"),
        "reach": ("reach_object", "bend_down"),
        "grip": ("open_car_doors", "open_jars", "turn_faucets"),
        "activities": ("errands", "car_in_out", "chores"),
    }


def test_all_items_zero_and_nothing_ticked_score_zero():
    result = haq.score(all_categories(0))
    assert result.di == 0.0
    assert result.di_without_aids == 0.0
    assert result.answered_categories == 8
    assert result.reason is None


def test_all_items_unable_score_the_maximum_3():
    result = haq.score(all_categories(3) | dict.fromkeys(haq.AIDS, True))
    assert result.di == result.di_without_aids == 3.0


def test_six_answered_categories_give_the_mean_of_the_six_worked_example():
    answers = category_answers(dressing=1, arising=0, walking=2, hygiene=1, grip=1, activities=2)
    result = haq.score(answers)
    assert result.di == pytest.approx(7 / 6)
    assert round(result.di, 3) == 1.167
    assert result.answered_categories == 6
    assert result.categories["eating"] is None
    assert result.categories["reach"] is None


def test_five_answered_categories_make_the_haq_di_none():
    answers = category_answers(dressing=1, arising=0, walking=2, hygiene=1, grip=1)
    result = haq.score(answers)
    assert (result.di, result.di_without_aids) == (None, None)
    assert result.reason == "incomplete"
    assert result.answered_categories == 5
    assert result.categories["walking"] == 2


def test_the_category_scores_its_highest_answered_item_even_when_partly_answered():
    answers = all_categories(0) | {"cut_meat": 1, "lift_cup": None, "open_carton": None}
    answers |= {"wash_body": 0, "tub_bath": 2, "toilet": 1}
    result = haq.score(answers)
    assert result.categories["eating"] == 1
    assert result.categories["hygiene"] == 2
    assert result.di == pytest.approx(3 / 8)


@pytest.mark.parametrize("aid", ["aid_cane", "aid_walker", "aid_crutches", "aid_wheelchair"])
@pytest.mark.parametrize(("raw", "adjusted"), [(0, 2), (1, 2), (2, 2), (3, 3)])
def test_a_walking_aid_raises_0_or_1_to_2_but_leaves_2_and_3(aid, raw, adjusted):
    result = haq.score(all_categories(0) | category_answers(walking=raw) | {aid: True})
    assert result.categories["walking"] == adjusted
    assert result.categories_without_aids["walking"] == raw
    assert result.di == pytest.approx(adjusted / 8)
    assert result.di_without_aids == pytest.approx(raw / 8)


def test_walking_items_3_and_3_with_a_wheelchair_stay_3():
    answers = all_categories(0) | {"walk_outdoors": 3, "climb_steps": 3, "aid_wheelchair": True}
    assert haq.score(answers).categories["walking"] == 3


AIDS_OF_SCORING_MD = {
    "aid_dressing_devices": "dressing",
    "aid_special_chair": "arising",
    "aid_built_up_utensils": "eating",
    "aid_cane": "walking",
    "aid_walker": "walking",
    "aid_crutches": "walking",
    "aid_wheelchair": "walking",
    "aid_raised_toilet_seat": "hygiene",
    "aid_bathtub_seat": "hygiene",
    "aid_bathtub_bar": "hygiene",
    "aid_long_handled_bathroom": "hygiene",
    "aid_long_handled_reach": "reach",
    "aid_jar_opener": "grip",
}


def test_the_aids_are_exactly_those_of_scoring_md():
    assert dict(haq.AIDS) == AIDS_OF_SCORING_MD


@pytest.mark.parametrize(("aid", "category"), AIDS_OF_SCORING_MD.items())
def test_each_aid_adjusts_its_own_category_and_no_other(aid, category):
    result = haq.score(all_categories(1) | {aid: True})
    raised = {name for name, value in result.categories.items() if value == 2}
    assert raised == {category}


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize(("raw", "adjusted"), [(0, 2), (1, 2), (3, 3)])
def test_help_from_another_person_adjusts_its_category_like_an_aid(category, raw, adjusted):
    answers = all_categories(1) | category_answers(**{category: raw})
    result = haq.score(answers | {f"help_{category}": True})
    assert result.categories[category] == adjusted
    assert sum(value == 1 for value in result.categories.values()) == 7


def test_an_unticked_aid_or_help_changes_nothing():
    answers = all_categories(1) | {"aid_cane": False, "help_grip": None}
    assert haq.score(answers).categories == dict.fromkeys(CATEGORIES, 1)


def test_aids_and_help_of_an_unanswered_category_are_ignored():
    answers = category_answers(dressing=1, arising=0, walking=2, hygiene=1, grip=1, activities=2)
    answers |= {"aid_built_up_utensils": True, "help_reach": True}
    result = haq.score(answers)
    assert result.categories["eating"] is None
    assert result.categories["reach"] is None
    assert result.di == pytest.approx(7 / 6)


def test_the_other_aid_is_free_text_and_adjusts_nothing():
    answers = all_categories(0) | {"aid_other": "a rubber grip on the toothbrush"}
    result = haq.score(answers)
    assert result.di == 0.0
    assert set(result.categories.values()) == {0}


def test_pain_40_scores_1_2():
    assert haq.score({"pain_vas": 40}).pain == 1.2


@pytest.mark.parametrize("value", range(0, 101))
def test_an_integer_vas_scores_its_exact_two_decimal_value(value):
    # 30 * 0.03 is 0.8999999999999999 in binary floating point; the score must be 0.9.
    assert haq.score({"global_vas": value}).global_ == round(value * 0.03, 2)


def test_each_vas_is_reported_on_its_own_and_a_blank_one_is_none():
    answers = {"pain_vas": 0, "global_vas": 100, "raynaud_vas": 50.5, "gi_vas": 10}
    result = haq.score(answers)
    assert result.pain == 0.0
    assert result.global_ == 3.0
    assert result.shaq == {
        "raynaud_vas": pytest.approx(1.515),
        "digital_ulcer_vas": None,
        "gi_vas": pytest.approx(0.3),
        "breathing_vas": None,
        "disease_severity_vas": None,
    }
    assert result.di is None


def test_an_empty_form_has_no_score_at_all():
    result = haq.score({})
    assert (result.di, result.di_without_aids, result.pain, result.global_) == (None,) * 4
    assert result.answered_categories == 0
    assert set(result.categories.values()) == {None}
    assert set(result.shaq.values()) == {None}


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("dress", 4, "0, 1, 2, 3 or None"),
        ("dress", True, "0, 1, 2, 3 or None"),
        ("chores", 1.5, "0, 1, 2, 3 or None"),
        ("aid_cane", 1, "True, False or None"),
        ("help_walking", "yes", "True, False or None"),
        ("aid_other", True, "free text (str) or None"),
        ("pain_vas", 101, "a number 0..100 or None"),
        ("gi_vas", -0.5, "a number 0..100 or None"),
        ("raynaud_vas", True, "a number 0..100 or None"),
        ("global_vas", "50", "a number 0..100 or None"),
        ("breathing_vas", float("nan"), "a number 0..100 or None"),
    ],
)
def test_a_value_outside_the_allowed_set_is_rejected_naming_key_and_allowed_values(
    key, value, allowed
):
    with pytest.raises(ScoringInputError) as excinfo:
        haq.score(all_categories(0) | {key: value})
    assert f"'{key}' = {value!r}" in str(excinfo.value)
    assert allowed in str(excinfo.value)


def test_an_unknown_key_is_rejected_naming_it_and_the_allowed_keys():
    with pytest.raises(ScoringInputError) as excinfo:
        haq.score({"aid_bathtub_chair": True})
    assert "unknown key 'aid_bathtub_chair'" in str(excinfo.value)
    assert "'aid_bathtub_seat'" in str(excinfo.value)


item_values = st.none() | st.integers(min_value=0, max_value=3)
forms = st.fixed_dictionaries(
    {item: item_values for item in ITEMS},
    optional={key: st.booleans() for key in (*haq.AIDS, *haq.HELP)},
)


@FAST
@given(forms)
def test_haq_di_is_in_range_and_never_below_the_score_without_aids(answers):
    result = haq.score(answers)
    assert (result.di is None) == (result.di_without_aids is None)
    assert (result.di is None) == (result.answered_categories < 6)
    if result.di is not None:
        assert 0 <= result.di_without_aids <= result.di <= 3


@FAST
@given(forms, st.sampled_from(ITEMS), st.integers(min_value=1, max_value=3))
def test_raising_one_answer_never_lowers_the_haq_di(answers, item, step):
    before = haq.score(answers)
    if answers[item] is not None:
        answers = answers | {item: min(3, answers[item] + step)}
    after = haq.score(answers)
    if before.di is not None:
        assert after.di >= before.di
        assert after.di_without_aids >= before.di_without_aids


@FAST
@given(
    st.fixed_dictionaries(
        {}, optional={key: st.floats(min_value=0, max_value=100) for key in haq.VAS_SCALES}
    )
)
def test_every_vas_scores_three_hundredths_of_its_value_between_0_and_3(answers):
    result = haq.score(answers)
    scores = {"pain_vas": result.pain, "global_vas": result.global_, **result.shaq}
    for key, value in scores.items():
        if key in answers:
            assert value == pytest.approx(answers[key] * 0.03)
            assert 0 <= value <= 3
        else:
            assert value is None
