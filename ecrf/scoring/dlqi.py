"""Dermatology Life Quality Index (DLQI).

Source: Finlay & Khan, Clin Exp Dermatol 1994, as set out in ``scoring.md`` section 2. Ten
questions about the last week, each scored 0..3; the DLQI is copyrighted and its use in a
study needs the owner's permission.

Input encoding (``None`` or an absent key always means "not answered"):

* ``q1``, ``q2``: ``"very_much"``, ``"a_lot"``, ``"a_little"``, ``"not_at_all"`` or the integers
  3, 2, 1, 0 (the item score itself).
* ``q3`` .. ``q6``, ``q8`` .. ``q10``: the same, plus ``"NR"`` (not relevant), which scores 0.
* ``q7a`` ("prevented you from working or studying?"): ``"yes"`` (scores 3), ``"NR"`` (scores
  0) or ``"no"``, which sends to ``q7b``.
* ``q7b`` (only when ``q7a`` is ``"no"``): ``"a_lot"``, ``"a_little"``, ``"not_at_all"`` or the
  integers 2, 1, 0.

Anything else (an unknown key, ``"NR"`` on ``q1``, ``True``, ``1.0``, a ``q7b`` answer while
``q7a`` is not ``"no"``) raises :class:`~ecrf.scoring.errors.ScoringInputError`.

Range: total 0..30 with a band (``no_effect`` 0-1, ``small`` 2-5, ``moderate`` 6-10,
``very_large`` 11-20, ``extremely_large`` 21-30) and six subscales.

Missing answers: one missing item (of the ten, ``q7`` counting as one) is scored 0 and reported
in ``imputed``; two or more make the total and band ``None`` with the reason
``"not_calculable"``. A subscale is ``None`` when one of its own items is missing: the single
imputation applies to the total only.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from ._validate import BLANK, check_keys, choice
from .errors import InvalidValueError

INSTRUMENT: Final = "dlqi"

#: The ten items of the total; ``q7`` is derived from ``q7a`` and ``q7b``.
ITEMS: Final[tuple[str, ...]] = ("q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9", "q10")

#: The keys accepted in the answers mapping.
KEYS: Final[tuple[str, ...]] = (
    "q1",
    "q2",
    "q3",
    "q4",
    "q5",
    "q6",
    "q7a",
    "q7b",
    "q8",
    "q9",
    "q10",
)

#: very much 3, a lot 2, a little 1, not at all 0 (the label or the score itself).
ANSWERS: Final[Mapping[object, int]] = {
    "very_much": 3,
    "a_lot": 2,
    "a_little": 1,
    "not_at_all": 0,
    3: 3,
    2: 2,
    1: 1,
    0: 0,
}
NOT_RELEVANT: Final = "NR"
#: "Not relevant" scores 0; it exists on q3..q6 and q8..q10 only.
ANSWERS_WITH_NR: Final[Mapping[object, int]] = {**ANSWERS, NOT_RELEVANT: 0}

#: Scale of each simple (one-part) item.
ITEM_ANSWERS: Final[Mapping[str, Mapping[object, int]]] = {
    "q1": ANSWERS,
    "q2": ANSWERS,
    "q3": ANSWERS_WITH_NR,
    "q4": ANSWERS_WITH_NR,
    "q5": ANSWERS_WITH_NR,
    "q6": ANSWERS_WITH_NR,
    "q8": ANSWERS_WITH_NR,
    "q9": ANSWERS_WITH_NR,
    "q10": ANSWERS_WITH_NR,
}

#: q7a: "yes" 3, "NR" 0; "no" (score None here) means the item is scored by q7b.
Q7A_NO: Final = "no"
Q7A_ANSWERS: Final[Mapping[object, int | None]] = {"yes": 3, Q7A_NO: None, NOT_RELEVANT: 0}
#: q7b: a lot 2, a little 1, not at all 0.
Q7B_ANSWERS: Final[Mapping[object, int]] = {
    "a_lot": 2,
    "a_little": 1,
    "not_at_all": 0,
    2: 2,
    1: 1,
    0: 0,
}

#: At most this many missing items are imputed as 0; more make the total not calculable.
MAX_IMPUTED: Final = 1
NOT_CALCULABLE: Final = "not_calculable"

type Band = Literal["no_effect", "small", "moderate", "very_large", "extremely_large"]

#: Upper bound (inclusive) of each band, in increasing order.
BANDS: Final[tuple[tuple[int, Band], ...]] = (
    (1, "no_effect"),
    (5, "small"),
    (10, "moderate"),
    (20, "very_large"),
    (30, "extremely_large"),
)

SUBSCALES: Final[Mapping[str, tuple[str, ...]]] = {
    "symptoms_feelings": ("q1", "q2"),
    "daily_activities": ("q3", "q4"),
    "leisure": ("q5", "q6"),
    "work_school": ("q7",),
    "personal_relationships": ("q8", "q9"),
    "treatment": ("q10",),
}


@dataclass(frozen=True, slots=True)
class DlqiResult:
    """``total`` 0..30 or ``None``; ``missing`` lists the unanswered items (``q1`` .. ``q10``)."""

    total: int | None
    band: Band | None
    imputed: int
    subscales: dict[str, int | None]
    missing: tuple[str, ...]
    reason: Literal["not_calculable"] | None


def _band(total: int) -> Band:
    return next(key for upper, key in BANDS if total <= upper)


def _subscale(scores: Mapping[str, int | None], items: tuple[str, ...]) -> int | None:
    values = [scores[item] for item in items]
    return sum(value for value in values if value is not None) if None not in values else None


def _q7(answers: Mapping[str, object]) -> int | None:
    q7a = answers.get("q7a")
    q7a_score = choice(INSTRUMENT, "q7a", q7a, Q7A_ANSWERS)
    q7b = answers.get("q7b")
    q7b_score = choice(INSTRUMENT, "q7b", q7b, Q7B_ANSWERS)
    # [D] A q7b answer while q7a is not "no" (yes, NR or blank) is an entry error.
    if q7b is not None and q7a != Q7A_NO:
        allowed = f"only {BLANK} while q7a is {q7a!r}: q7b is answered when q7a is {Q7A_NO!r}"
        raise InvalidValueError(INSTRUMENT, "q7b", q7b, allowed)
    # [D] q7 is missing when q7a is blank, or when q7a is "no" and q7b is blank.
    return q7b_score if q7a == Q7A_NO else q7a_score


def score(answers: Mapping[str, object]) -> DlqiResult:
    """Total, band and subscales from the raw answers."""
    check_keys(INSTRUMENT, answers, KEYS)
    scores: dict[str, int | None] = {
        item: choice(INSTRUMENT, item, answers.get(item), scale)
        for item, scale in ITEM_ANSWERS.items()
    }
    scores["q7"] = _q7(answers)
    missing = tuple(item for item in ITEMS if scores[item] is None)
    subscales = {name: _subscale(scores, items) for name, items in SUBSCALES.items()}
    if len(missing) > MAX_IMPUTED:
        return DlqiResult(None, None, 0, subscales, missing, NOT_CALCULABLE)
    # [P] a single missing item is scored 0 and counted as imputed.
    total = sum(value for value in scores.values() if value is not None)
    return DlqiResult(total, _band(total), len(missing), subscales, missing, None)


__all__ = ["BANDS", "ITEMS", "KEYS", "SUBSCALES", "DlqiResult", "score"]
