"""Dermatology Life Quality Index: scoring.md section 2."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrf.scoring import ScoringInputError, dlqi

FAST = settings(max_examples=200, deadline=None, database=None)
SIMPLE_ITEMS = ("q1", "q2", "q3", "q4", "q5", "q6", "q8", "q9", "q10")
LABELS = {"very_much": 3, "a_lot": 2, "a_little": 1, "not_at_all": 0}


def answers_scoring(**scores: int) -> dict[str, object]:
    """A complete form: simple items as integers, q7 given through q7a/q7b as needed."""
    form: dict[str, object] = dict.fromkeys(SIMPLE_ITEMS, 0)
    q7 = scores.pop("q7", 0)
    form.update(scores)
    form.update({"q7a": "yes"} if q7 == 3 else {"q7a": "no", "q7b": q7})
    return form


def test_everything_not_at_all_or_not_relevant_scores_zero_no_effect():
    form = {
        "q1": "not_at_all",
        "q2": "not_at_all",
        **dict.fromkeys(("q3", "q4", "q5", "q6", "q8", "q9", "q10"), "NR"),
        "q7a": "NR",
    }
    result = dlqi.score(form)
    assert (result.total, result.band, result.imputed, result.reason) == (0, "no_effect", 0, None)
    assert result.missing == ()


def test_the_worked_example_scores_12_very_large():
    form = {
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
    result = dlqi.score(form)
    assert (result.total, result.band) == (12, "very_large")
    assert result.subscales == {
        "symptoms_feelings": 5,
        "daily_activities": 1,
        "leisure": 2,
        "work_school": 1,
        "personal_relationships": 1,
        "treatment": 2,
    }


def test_integer_answers_score_like_their_labels():
    labels = dlqi.score(dict.fromkeys(SIMPLE_ITEMS, "a_lot") | {"q7a": "no", "q7b": "a_lot"})
    numbers = dlqi.score(dict.fromkeys(SIMPLE_ITEMS, 2) | {"q7a": "no", "q7b": 2})
    assert labels == numbers
    assert labels.total == 20


@pytest.mark.parametrize(("label", "value"), LABELS.items())
def test_each_answer_label_scores_its_published_value(label, value):
    assert dlqi.score(answers_scoring() | {"q1": label}).total == value


def test_one_missing_item_is_scored_zero_and_counted_as_imputed():
    form = answers_scoring(q1=2, q2=1, q3=1, q5=1)
    del form["q9"]
    result = dlqi.score(form)
    assert (result.total, result.band, result.imputed) == (5, "small", 1)
    assert result.missing == ("q9",)
    assert result.reason is None


def test_the_subscale_of_the_imputed_item_is_none_while_the_others_are_scored():
    form = answers_scoring(q8=2)
    form["q9"] = None
    result = dlqi.score(form)
    assert result.subscales["personal_relationships"] is None
    assert result.subscales["symptoms_feelings"] == 0
    assert result.total == 2


def test_two_missing_items_make_the_total_not_calculable():
    form = answers_scoring(q1=3)
    del form["q4"]
    del form["q9"]
    result = dlqi.score(form)
    assert (result.total, result.band, result.imputed) == (None, None, 0)
    assert result.reason == "not_calculable"
    assert result.missing == ("q4", "q9")
    assert result.subscales["symptoms_feelings"] == 3


def test_an_empty_form_is_not_calculable_with_all_ten_items_missing():
    result = dlqi.score({})
    assert result.total is None
    assert result.missing == dlqi.ITEMS
    assert set(result.subscales.values()) == {None}


def test_all_very_much_scores_the_maximum_30_extremely_large():
    result = dlqi.score(answers_scoring(**dict.fromkeys(SIMPLE_ITEMS, 3), q7=3))
    assert (result.total, result.band) == (30, "extremely_large")


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "no_effect"),
        (1, "no_effect"),
        (2, "small"),
        (5, "small"),
        (6, "moderate"),
        (10, "moderate"),
        (11, "very_large"),
        (20, "very_large"),
        (21, "extremely_large"),
        (30, "extremely_large"),
    ],
)
def test_band_edges(total, band):
    scores = dict.fromkeys(dlqi.ITEMS, 0)
    for item in dlqi.ITEMS:  # fill items with 3 until the total is reached
        scores[item] = min(3, total - sum(scores.values()))
    result = dlqi.score(answers_scoring(**scores))
    assert (result.total, result.band) == (total, band)


def test_q7a_yes_scores_3_and_fills_the_work_school_subscale():
    result = dlqi.score({**dict.fromkeys(SIMPLE_ITEMS, 0), "q7a": "yes"})
    assert result.total == 3
    assert result.subscales["work_school"] == 3


def test_q7a_not_relevant_scores_0():
    result = dlqi.score({**dict.fromkeys(SIMPLE_ITEMS, 0), "q1": 1, "q7a": "NR"})
    assert (result.total, result.missing) == (1, ())


@pytest.mark.parametrize(("q7b", "value"), [("a_lot", 2), ("a_little", 1), ("not_at_all", 0)])
def test_q7a_no_scores_q7b(q7b, value):
    form = answers_scoring() | {"q7a": "no", "q7b": q7b}
    assert dlqi.score(form).subscales["work_school"] == value


def test_q7a_no_without_q7b_makes_q7_missing():
    form = answers_scoring(q1=1)
    form["q7a"] = "no"
    del form["q7b"]
    result = dlqi.score(form)
    assert (result.total, result.imputed, result.missing) == (1, 1, ("q7",))


def test_a_blank_q7a_makes_q7_missing():
    form = answers_scoring(q1=1)
    del form["q7a"]
    del form["q7b"]
    assert dlqi.score(form).missing == ("q7",)


@pytest.mark.parametrize("q7a", ["yes", "NR", None])
def test_q7b_answered_while_q7a_is_not_no_is_an_entry_error(q7a):
    form = answers_scoring() | {"q7a": q7a, "q7b": "a_little"}
    with pytest.raises(ScoringInputError) as excinfo:
        dlqi.score(form)
    assert "'q7b' = 'a_little'" in str(excinfo.value)
    assert f"only None (blank) while q7a is {q7a!r}" in str(excinfo.value)


@pytest.mark.parametrize("item", ["q1", "q2"])
def test_not_relevant_is_rejected_on_q1_and_q2(item):
    with pytest.raises(ScoringInputError) as excinfo:
        dlqi.score(answers_scoring() | {item: "NR"})
    message = str(excinfo.value)
    assert f"'{item}' = 'NR'" in message
    assert "'very_much', 'a_lot', 'a_little', 'not_at_all', 3, 2, 1, 0 or None" in message


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("q3", 4, "'not_at_all', 3, 2, 1, 0, 'NR' or None"),
        ("q3", True, "'not_at_all', 3, 2, 1, 0, 'NR' or None"),
        ("q5", 1.0, "'not_at_all', 3, 2, 1, 0, 'NR' or None"),
        ("q10", "VERY_MUCH", "'not_at_all', 3, 2, 1, 0, 'NR' or None"),
        ("q7a", "maybe", "'yes', 'no', 'NR' or None"),
        ("q7a", 3, "'yes', 'no', 'NR' or None"),
        ("q7b", "very_much", "'a_lot', 'a_little', 'not_at_all', 2, 1, 0 or None"),
        ("q7b", 3, "'a_lot', 'a_little', 'not_at_all', 2, 1, 0 or None"),
    ],
)
def test_a_value_outside_the_allowed_set_is_rejected_naming_key_and_allowed_values(
    key, value, allowed
):
    form = answers_scoring()
    form[key] = value
    with pytest.raises(ScoringInputError) as excinfo:
        dlqi.score(form)
    assert f"'{key}' = {value!r}" in str(excinfo.value)
    assert allowed in str(excinfo.value)


def test_an_unknown_key_is_rejected_naming_it_and_the_allowed_keys():
    with pytest.raises(ScoringInputError) as excinfo:
        dlqi.score(answers_scoring() | {"q7": 2})
    assert "unknown key 'q7'" in str(excinfo.value)
    assert "'q7a', 'q7b'" in str(excinfo.value)


item_scores = st.integers(min_value=0, max_value=3)
q7_scores = st.integers(min_value=0, max_value=3)


def to_form(scores: dict[str, int | None]) -> dict[str, object]:
    form: dict[str, object] = {item: scores[item] for item in SIMPLE_ITEMS}
    q7 = scores["q7"]
    if q7 == 3:
        form["q7a"] = "yes"
    elif q7 is not None:
        form.update(q7a="no", q7b=q7)
    return form


score_sets = st.fixed_dictionaries({item: st.none() | item_scores for item in dlqi.ITEMS})


@FAST
@given(score_sets)
def test_total_is_in_range_and_none_exactly_when_two_items_are_missing(scores):
    result = dlqi.score(to_form(scores))
    missing = [item for item in dlqi.ITEMS if scores[item] is None]
    if len(missing) >= 2:
        assert result.total is None
    else:
        assert result.total == sum(v for v in scores.values() if v is not None)
        assert 0 <= result.total <= 30
        assert result.imputed == len(missing)


@FAST
@given(score_sets, st.sampled_from(dlqi.ITEMS), st.integers(min_value=1, max_value=3))
def test_raising_one_answer_never_lowers_the_total(scores, item, step):
    before = dlqi.score(to_form(scores))
    if scores[item] is not None:
        scores = scores | {item: min(3, scores[item] + step)}
    after = dlqi.score(to_form(scores))
    if before.total is not None:
        assert after.total is not None
        assert after.total >= before.total
