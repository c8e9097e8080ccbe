"""2019 EULAR/ACR classification criteria for systemic lupus erythematosus (SLE).

Source: Aringer et al., Ann Rheum Dis / Arthritis Rheumatol 2019, as set out in ``scoring.md``
section 5. These are classification criteria (for entering a study), not diagnostic criteria.

Input: a mapping of finding keys to booleans: the entry criterion ``ana_positive`` (ANA at a
titre of at least 1:80 on HEp-2 cells, or an equivalent positive test, at least once) and the
finding keys of :data:`CLINICAL_DOMAINS` and :data:`IMMUNOLOGIC_DOMAINS`. The investigator
records a finding only when it is not more likely explained by another condition. ``None`` or
an absent key means "not present / not recorded", like ``False``; anything else raises
:class:`~ecrf.scoring.errors.ScoringInputError`.

Scoring: within each domain only the highest criterion counts (complement: low C3 or low C4
alone 3, both 4); ``points`` is the sum over the ten domains, 0..51. ``has_clinical`` is true
when at least one clinical (non-immunologic) criterion is present.

Classification: SLE when ``points >= 10`` and ``has_clinical``. Without a positive ANA the
criteria do not apply: status ``entry_criterion_not_met``, ``points`` ``None``, ``classified``
``False``.

Missing answers: an unrecorded finding counts as absent, and an unrecorded ANA as not meeting
the entry criterion.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from ._validate import check_keys, flag

INSTRUMENT: Final = "sle2019"

ENTRY_CRITERION: Final = "ana_positive"

#: Clinical domains: domain -> {finding key: points}.
CLINICAL_DOMAINS: Final[Mapping[str, Mapping[str, int]]] = {
    "constitutional": {"fever": 2},
    "hematologic": {"leukopenia": 3, "thrombocytopenia": 4, "autoimmune_hemolysis": 4},
    "neuropsychiatric": {"delirium": 2, "psychosis": 3, "seizure": 5},
    "mucocutaneous": {
        "alopecia": 2,
        "oral_ulcers": 2,
        "subacute_or_discoid_lupus": 4,
        "acute_cutaneous_lupus": 6,
    },
    "serosal": {"pleural_or_pericardial_effusion": 5, "acute_pericarditis": 6},
    "musculoskeletal": {"joint_involvement": 6},
    "renal": {
        "proteinuria": 4,
        "lupus_nephritis_class_2_or_5": 8,
        "lupus_nephritis_class_3_or_4": 10,
    },
}

#: Immunologic domains: domain -> {finding key: points}.
IMMUNOLOGIC_DOMAINS: Final[Mapping[str, Mapping[str, int]]] = {
    "antiphospholipid": {"antiphospholipid": 2},
    "complement": {"low_c3": 3, "low_c4": 3},
    "sle_specific_antibodies": {"anti_dsdna": 6, "anti_smith": 6},
}

#: Criteria met only by a combination of findings: domain -> ((findings, points), ...).
COMBINED_CRITERIA: Final[Mapping[str, tuple[tuple[tuple[str, ...], int], ...]]] = {
    "complement": ((("low_c3", "low_c4"), 4),),
}

DOMAINS: Final[Mapping[str, Mapping[str, int]]] = {**CLINICAL_DOMAINS, **IMMUNOLOGIC_DOMAINS}

THRESHOLD: Final = 10
MAX_POINTS: Final = sum(
    max([*findings.values(), *(points for _, points in COMBINED_CRITERIA.get(domain, ()))])
    for domain, findings in DOMAINS.items()
)  # 51

KEYS: Final[tuple[str, ...]] = (
    ENTRY_CRITERION,
    *(key for findings in DOMAINS.values() for key in findings),
)

type Status = Literal["classified", "not_classified", "entry_criterion_not_met"]


@dataclass(frozen=True, slots=True)
class Sle2019Result:
    """``points`` (None without the entry criterion), classification and per-domain points."""

    points: int | None
    classified: bool
    has_clinical: bool
    status: Status
    domains: dict[str, int]


def _domain_points(domain: str, present: Mapping[str, bool]) -> int:
    singles = [points for key, points in DOMAINS[domain].items() if present[key]]
    combined = [
        points
        for keys, points in COMBINED_CRITERIA.get(domain, ())
        if all(present[key] for key in keys)
    ]
    return max(singles + combined, default=0)


def score(findings: Mapping[str, bool]) -> Sle2019Result:
    """Entry criterion, points and classification from the recorded findings."""
    check_keys(INSTRUMENT, findings, KEYS)
    present = {key: flag(INSTRUMENT, key, findings.get(key)) for key in KEYS}
    domains = {domain: _domain_points(domain, present) for domain in DOMAINS}
    has_clinical = any(domains[domain] for domain in CLINICAL_DOMAINS)
    if not present[ENTRY_CRITERION]:
        return Sle2019Result(None, False, has_clinical, "entry_criterion_not_met", domains)
    points = sum(domains.values())
    classified = points >= THRESHOLD and has_clinical
    status: Status = "classified" if classified else "not_classified"
    return Sle2019Result(points, classified, has_clinical, status, domains)


__all__ = [
    "CLINICAL_DOMAINS",
    "DOMAINS",
    "ENTRY_CRITERION",
    "IMMUNOLOGIC_DOMAINS",
    "KEYS",
    "MAX_POINTS",
    "Sle2019Result",
    "score",
]
