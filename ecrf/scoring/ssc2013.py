"""2013 ACR/EULAR classification criteria for systemic sclerosis (SSc).

Source: van den Hoogen et al., Arthritis Rheum / Ann Rheum Dis 2013, as set out in
``scoring.md`` section 4. These are classification criteria (for entering a study), not
diagnostic criteria.

Input: a mapping of finding keys to booleans: the keys of :data:`SUFFICIENT`, :data:`ITEMS`
and :data:`EXCLUSIONS`. A finding counts when it was present at any time in the patient's
history. ``None`` or an absent key means "not present / not recorded", like ``False``; anything
else (``1``, ``"yes"``, an unknown key) raises :class:`~ecrf.scoring.errors.ScoringInputError`.

Range: ``points`` is the sum of items 2..8, each item counting only its highest sub-item,
0..19. Item 1 (skin thickening proximal to the MCP joints, 9 points in the publication) is
reported separately as ``sufficient`` and is not part of ``points``.

Classification: SSc when ``sufficient`` or ``points >= 9`` (status ``classified``, else
``not_classified``). When the skin thickening spares the fingers or a scleroderma-like disorder
explains the findings better, the criteria do not apply: status ``not_applicable`` and
``classified`` is ``None`` (not "not SSc"); ``points`` and ``sufficient`` are still computed
from the findings, for information.

Missing answers: an unrecorded finding counts as absent; there is no "not calculable" state.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from ._validate import check_keys, flag

INSTRUMENT: Final = "ssc2013"

#: Item 1, sufficient on its own to classify as SSc.
SUFFICIENT: Final = "skin_thickening_proximal_mcp"

#: Items 2..8: item name -> {finding key: points}; an item counts its highest finding only.
ITEMS: Final[Mapping[str, Mapping[str, int]]] = {
    "skin_thickening_fingers": {"puffy_fingers": 2, "sclerodactyly": 4},
    "fingertip_lesions": {"digital_tip_ulcers": 2, "fingertip_pitting_scars": 3},
    "telangiectasia": {"telangiectasia": 2},
    "abnormal_nailfold_capillaries": {"abnormal_nailfold_capillaries": 2},
    "pah_or_ild": {"pah": 2, "ild": 2},
    "raynaud": {"raynaud": 3},
    "ssc_autoantibodies": {"anti_centromere": 3, "anti_topoisomerase": 3, "anti_rna_pol3": 3},
}

#: Either of these makes the criteria not applicable.
EXCLUSIONS: Final[tuple[str, ...]] = ("fingers_spared", "better_explained_by_other_disorder")

#: Points of items 2..8 needed to classify without item 1.
THRESHOLD: Final = 9
MAX_POINTS: Final = sum(max(findings.values()) for findings in ITEMS.values())  # 19

KEYS: Final[tuple[str, ...]] = (
    SUFFICIENT,
    *(key for findings in ITEMS.values() for key in findings),
    *EXCLUSIONS,
)

type Status = Literal["classified", "not_classified", "not_applicable"]


@dataclass(frozen=True, slots=True)
class Ssc2013Result:
    """``points`` 0..19 (items 2..8), ``sufficient`` (item 1), ``classified`` (None if N/A)."""

    points: int
    sufficient: bool
    classified: bool | None
    status: Status
    items: dict[str, int]


def score(findings: Mapping[str, bool]) -> Ssc2013Result:
    """Points, sufficiency and classification from the recorded findings."""
    check_keys(INSTRUMENT, findings, KEYS)
    present = {key: flag(INSTRUMENT, key, findings.get(key)) for key in KEYS}
    items = {
        item: max((points for key, points in sub.items() if present[key]), default=0)
        for item, sub in ITEMS.items()
    }
    points = sum(items.values())
    sufficient = present[SUFFICIENT]
    if any(present[key] for key in EXCLUSIONS):
        return Ssc2013Result(points, sufficient, None, "not_applicable", items)
    classified = sufficient or points >= THRESHOLD
    status: Status = "classified" if classified else "not_classified"
    return Ssc2013Result(points, sufficient, classified, status, items)


__all__ = ["EXCLUSIONS", "ITEMS", "KEYS", "MAX_POINTS", "SUFFICIENT", "Ssc2013Result", "score"]
