"""Stanford Health Assessment Questionnaire disability index (HAQ-DI), pain and global VAS, and
the five visual analogue scales of the Scleroderma HAQ (SHAQ).

Source: Fries et al. 1980 and the Stanford scoring convention (Bruce & Fries 2003); SHAQ:
Steen & Medsger 1997; as set out in ``scoring.md`` section 3.

Input (``None`` or an absent key always means "not answered"):

* the 20 items of :data:`CATEGORIES`: integers 0 (without any difficulty), 1 (with some
  difficulty), 2 (with much difficulty), 3 (unable to do);
* the aids and devices of :data:`AIDS` and the ``help_<category>`` keys: booleans (``None`` is
  "not ticked"); ``aid_other`` is free text and adjusts nothing;
* the visual analogue scales of :data:`VAS_SCALES`: a number (int or float) 0..100.

Anything else (an unknown key, an item of 4 or ``True``, an aid of 1, a VAS of 101)
raises :class:`~ecrf.scoring.errors.ScoringInputError`.

Scoring and range: a category scores its highest answered item; with an aid/device or help from
another person mapped to it, a score of 0 or 1 is raised to 2 (a 2 or 3 stays). The HAQ-DI is
the mean of the answered category scores, 0..3, at full float precision (display rounds to
3 decimals). It is computed with aids (the standard score, ``di``) and without
(``di_without_aids``). Each VAS is scored ``value * 0.03``, 0..3, on its own: never summed.

Missing answers: a category with no answered item is missing and its aids and help are ignored;
fewer than 6 answered categories make both HAQ-DI ``None`` with the reason ``"incomplete"``.
A blank VAS is ``None`` and affects nothing else.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from ._validate import BLANK, check_keys, choice, flag
from .errors import InvalidValueError

INSTRUMENT: Final = "haq"

#: The eight categories and their items.
CATEGORIES: Final[Mapping[str, tuple[str, ...]]] = {
    "dressing": ("dress", "shampoo"),
    "arising": ("stand_up", "in_out_bed"),
    "eating": ("cut_meat", "lift_cup", "open_carton"),
    "walking": ("walk_outdoors", "climb_steps"),
    "hygiene": ("wash_body", "tub_bath", "toilet"),
    "reach": ("reach_object", "bend_down"),
    "grip": ("open_car_doors", "open_jars", "turn_faucets"),
    "activities": ("errands", "car_in_out", "chores"),
}

#: 0 without any difficulty, 1 with some, 2 with much difficulty, 3 unable to do.
ITEM_SCORES: Final[Mapping[object, int]] = {0: 0, 1: 1, 2: 2, 3: 3}

#: Aid or device -> the category it adjusts ([C] for the bathtub seat).
AIDS: Final[Mapping[str, str]] = {
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

#: [D] Free-text "other" aid: recorded, but it adjusts no category.
AID_OTHER: Final = "aid_other"

#: Help from another person -> the category it adjusts (one per category).
HELP: Final[Mapping[str, str]] = {f"help_{category}": category for category in CATEGORIES}

#: An aid or help raises a category score below this value to this value.
AID_FLOOR: Final = 2

#: [C] Fewer answered categories than this make the HAQ-DI None.
MIN_CATEGORIES: Final = 6
INCOMPLETE: Final = "incomplete"

HAQ_VAS: Final[tuple[str, ...]] = ("pain_vas", "global_vas")
SHAQ_VAS: Final[tuple[str, ...]] = (
    "raynaud_vas",
    "digital_ulcer_vas",
    "gi_vas",
    "breathing_vas",
    "disease_severity_vas",
)
VAS_SCALES: Final[tuple[str, ...]] = HAQ_VAS + SHAQ_VAS
VAS_MAX: Final = 100
#: A VAS is scored value * 0.03, computed as value * VAS_SCORE_MAX / VAS_MAX so that an integer
#: value gives its exact two-decimal score (30 -> 0.9, where 30 * 0.03 is 0.8999999999999999).
VAS_SCORE_MAX: Final = 3

ITEMS: Final[tuple[str, ...]] = tuple(item for items in CATEGORIES.values() for item in items)
KEYS: Final[tuple[str, ...]] = (*ITEMS, *AIDS, AID_OTHER, *HELP, *VAS_SCALES)

#: The aid and help keys adjusting each category.
_ADJUSTERS: Final[Mapping[str, tuple[str, ...]]] = {
    category: tuple(key for key, target in (*AIDS.items(), *HELP.items()) if target == category)
    for category in CATEGORIES
}


@dataclass(frozen=True, slots=True)
class HaqResult:
    """HAQ-DI with and without aids (0..3 or ``None``), category scores and the VAS scores."""

    di: float | None
    di_without_aids: float | None
    categories: dict[str, int | None]
    categories_without_aids: dict[str, int | None]
    answered_categories: int
    reason: Literal["incomplete"] | None
    pain: float | None
    global_: float | None
    shaq: dict[str, float | None]


def _vas(key: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= VAS_MAX:
        return value * VAS_SCORE_MAX / VAS_MAX
    raise InvalidValueError(INSTRUMENT, key, value, f"a number 0..{VAS_MAX} or {BLANK}")


def _mean(scores: Mapping[str, int | None]) -> float | None:
    answered = [value for value in scores.values() if value is not None]
    return sum(answered) / len(answered) if len(answered) >= MIN_CATEGORIES else None


def score(answers: Mapping[str, object]) -> HaqResult:
    """HAQ-DI (with and without aids), pain, global and SHAQ scales from the raw answers."""
    check_keys(INSTRUMENT, answers, KEYS)
    items = {item: choice(INSTRUMENT, item, answers.get(item), ITEM_SCORES) for item in ITEMS}
    ticked = {key: flag(INSTRUMENT, key, answers.get(key)) for key in (*AIDS, *HELP)}
    other_aid = answers.get(AID_OTHER)
    if other_aid is not None and not isinstance(other_aid, str):
        raise InvalidValueError(INSTRUMENT, AID_OTHER, other_aid, f"free text (str) or {BLANK}")
    vas = {key: _vas(key, answers.get(key)) for key in VAS_SCALES}

    without_aids: dict[str, int | None] = {}
    with_aids: dict[str, int | None] = {}
    for category, category_items in CATEGORIES.items():
        answered = [value for item in category_items if (value := items[item]) is not None]
        # [D] A category with no answered item is missing; its aids and help are ignored.
        # [C] A partly answered category counts, scored by its highest answered item.
        raw = max(answered, default=None)
        adjusted = raw
        if raw is not None and any(ticked[key] for key in _ADJUSTERS[category]):
            adjusted = max(raw, AID_FLOOR)
        without_aids[category] = raw
        with_aids[category] = adjusted

    di = _mean(with_aids)
    return HaqResult(
        di=di,
        di_without_aids=_mean(without_aids),
        categories=with_aids,
        categories_without_aids=without_aids,
        answered_categories=sum(value is not None for value in without_aids.values()),
        reason=INCOMPLETE if di is None else None,
        pain=vas["pain_vas"],
        global_=vas["global_vas"],
        shaq={key: vas[key] for key in SHAQ_VAS},
    )


__all__ = [
    "AIDS",
    "CATEGORIES",
    "HELP",
    "KEYS",
    "SHAQ_VAS",
    "VAS_SCALES",
    "HaqResult",
    "score",
]
