"""Modified Rodnan skin score (mRSS).

Source: the modified Rodnan skin score for systemic sclerosis (Clements et al.), as set out in
``scoring.md`` section 1. The examiner pinches the skin of 17 body areas and scores each one
0 (normal), 1 (mild), 2 (moderate) or 3 (severe) thickening.

Input: a mapping from the 17 area keys of :data:`AREAS` to an integer 0..3. ``None`` or an
absent key means the area was not scored (left blank or "not assessable": amputation, wound,
dressing; the reason itself is kept by the form, not here). Anything else (4, 1.5, ``True``,
``"2"``, an unknown key) raises :class:`~ecrf.scoring.errors.ScoringInputError`.

Range: the total is the plain sum of the 17 areas, 0..51.

Missing answers: a single blank area makes the total ``None`` with the reason ``"incomplete"``;
the blank areas are listed in ``missing``. There is no proration (project decision, see below).

:func:`percent_change` gives the change from baseline in percent, the primary endpoint of
NCT00479934.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from ._validate import BLANK, check_keys, choice, is_int
from .errors import InvalidValueError

INSTRUMENT: Final = "mrss"

#: The 17 areas, in the order of the scoring.md table (read column by column: head to feet).
AREAS: Final[tuple[str, ...]] = (
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

#: Allowed score of one area: 0 normal, 1 mild, 2 moderate, 3 severe.
AREA_SCORES: Final[Mapping[object, int]] = {0: 0, 1: 1, 2: 2, 3: 3}

MAX_TOTAL: Final = max(AREA_SCORES.values()) * len(AREAS)  # 51

#: [D] Project decision: a blank or not-assessable area makes the total None with this reason;
#: the total is never prorated from the areas that were scored.
INCOMPLETE: Final = "incomplete"


@dataclass(frozen=True, slots=True)
class MrssResult:
    """``total`` 0..51 or ``None``; ``missing`` the blank areas in :data:`AREAS` order."""

    total: int | None
    missing: tuple[str, ...]
    reason: Literal["incomplete"] | None


def score(values: Mapping[str, int | None]) -> MrssResult:
    """Total skin score from the 17 area scores."""
    check_keys(INSTRUMENT, values, AREAS)
    scores = {area: choice(INSTRUMENT, area, values.get(area), AREA_SCORES) for area in AREAS}
    answered = [value for value in scores.values() if value is not None]
    missing = tuple(area for area, value in scores.items() if value is None)
    if missing:
        return MrssResult(total=None, missing=missing, reason=INCOMPLETE)
    return MrssResult(total=sum(answered), missing=(), reason=None)


def _total(key: str, value: int | None) -> int | None:
    if value is None or (is_int(value) and 0 <= value <= MAX_TOTAL):
        return value
    raise InvalidValueError(INSTRUMENT, key, value, f"an integer 0..{MAX_TOTAL} or {BLANK}")


def percent_change(baseline: int | None, value: int | None) -> float | None:
    """``100 * (value - baseline) / baseline``; ``None`` when either is ``None`` or baseline is 0.

    Both arguments are mRSS totals (integers 0..51); anything else raises
    :class:`~ecrf.scoring.errors.ScoringInputError`.
    """
    baseline = _total("baseline", baseline)
    value = _total("value", value)
    if baseline is None or value is None or baseline == 0:
        return None
    return 100 * (value - baseline) / baseline


__all__ = ["AREAS", "INCOMPLETE", "MAX_TOTAL", "MrssResult", "percent_change", "score"]
