"""Randomisation: permuted blocks stratified by site, concealed behind kit numbers.

Each site of a randomised study has an allocation list: numbered slots, each an arm
behind a kit number, grouped in blocks that are balanced to the protocol's ratio. An
unblinded data manager (or administrator) generates a list from a recorded seed or
imports the statistician's; enrolment then takes the site's lowest free slot.

Kit numbers are drawn from the operating system's random source, not from the seed:
blinded users see kit numbers, and numbers derived from the seeded generator would let
anyone who knows the algorithm search for the seed and so recover every arm.
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.accounts.access import can_see_allocation
from ecrf.accounts.permissions import Action, can, require
from ecrf.audit.context import audited
from ecrf.patients.locks import require_unlocked
from ecrf.patients.models import Allocation, AllocationList, Patient
from ecrf.studies.models import Study, StudySite

IMPORT_COLUMNS = ("sequence", "block_number", "block_size", "arm", "kit_number")
MAX_LIST_SIZE = 5000
MAX_SEED = 2**63 - 1  # a PostgreSQL bigint
# Kit numbers are K- and six random digits; the space is kept sparse so that drawing a
# fresh one never takes more than a few tries.
KIT_LOW, KIT_HIGH = 100_000, 999_999
KIT_SPACE_USE = 0.5
# Patients in these states are not randomised any more.
NOT_RANDOMISABLE = Patient.ENDED

Slot = tuple[int, int, str]  # (block number, block size, arm)


# -- pure generation ---------------------------------------------------------------------------


def generate_blocks(
    *,
    arms: Sequence[str],
    ratio: Mapping[str, int],
    block_sizes: Sequence[int],
    n: int,
    seed: int,
) -> list[Slot]:
    """Permuted blocks of random size for one stratum, deterministic for a seed.

    Each block has a size drawn from `block_sizes` and holds every arm `ratio[arm] *
    size / sum(ratio)` times, in random order. Whole blocks are generated until there are
    at least `n` slots: a list cut inside a block would be unbalanced.
    """
    if not arms or set(ratio) != set(arms) or any(ratio[arm] < 1 for arm in arms):
        raise ValueError("the ratio needs a positive count for every arm, and only them")
    per_block = sum(ratio[arm] for arm in arms)
    if not block_sizes or any(size < 1 or size % per_block for size in block_sizes):
        raise ValueError(f"block sizes must be positive multiples of the ratio's total {per_block}")
    if n < 0:
        raise ValueError("n must not be negative")
    unit = [arm for arm in arms for _ in range(ratio[arm])]
    rng = random.Random(seed)  # nosec B311  # the list must be reproducible from its recorded seed
    slots: list[Slot] = []
    block_number = 0
    while len(slots) < n:
        block_number += 1
        size = rng.choice(list(block_sizes))
        block = unit * (size // per_block)
        rng.shuffle(block)
        slots.extend((block_number, size, arm) for arm in block)
    return slots


# -- who may do what ---------------------------------------------------------------------------


def can_manage_allocation_lists(user, *, study) -> bool:
    """Unblinded data managers and administrators of the study generate and import lists."""
    return can(user, Action.MANAGE_ALLOCATION_LISTS, study=study) and can_see_allocation(
        user, study=study
    )


def _require_unblinded(user, *, study) -> None:
    """The table lets the role manage lists; a list shows arms, so the user must see them."""
    if not can_see_allocation(user, study=study):
        raise PermissionDenied(
            _(
                "Only an unblinded data manager or administrator of the study may create "
                "allocation lists."
            )
        )


def _randomisation(study):
    protocol_version = study.current_protocol
    spec = protocol_version.protocol.randomisation if protocol_version else None
    if spec is None:
        raise ValidationError(_("Study %(study)s is not randomised.") % {"study": study.code})
    return protocol_version.protocol, spec


def _lock_study_site(*, study, site) -> StudySite:
    """Lock the site's row in the study: slot taking and list creation queue behind it."""
    try:
        return StudySite.objects.select_for_update().get(study=study, site=site)
    except StudySite.DoesNotExist:
        raise ValidationError(
            {
                "site": _("Site %(site)s does not take part in study %(study)s.")
                % {"site": site.code, "study": study.code}
            }
        ) from None


def _lock_for_new_list(*, study, site) -> None:
    """A new list locks the study (kit numbers are unique in it) and then the site."""
    Study.objects.select_for_update().get(pk=study.pk)
    _lock_study_site(study=study, site=site)


def _site_end(*, study, site) -> tuple[int, int]:
    """The highest sequence and block number of the site's slots so far (0 when none)."""
    ends = Allocation.objects.filter(study=study, site=site).aggregate(
        sequence=Max("sequence"), block=Max("block_number")
    )
    return ends["sequence"] or 0, ends["block"] or 0


def _new_kit_numbers(*, study, count: int) -> list[str]:
    used = set(Allocation.objects.filter(study=study).values_list("kit_number", flat=True))
    if len(used) + count > (KIT_HIGH - KIT_LOW + 1) * KIT_SPACE_USE:
        raise ValidationError(_("This study has run out of kit numbers."))
    numbers: list[str] = []
    while len(numbers) < count:
        number = f"K-{KIT_LOW + secrets.randbelow(KIT_HIGH - KIT_LOW + 1)}"
        if number not in used:
            used.add(number)
            numbers.append(number)
    return numbers


# -- services ----------------------------------------------------------------------------------


def allocation_list_generate(
    *, study, site, size: int, seed: int | None = None, by, note: str = ""
) -> AllocationList:
    """Generate a site's allocation list of at least `size` slots (whole blocks).

    The seed is drawn from the operating system when not given, and recorded on the list.
    If the site already has slots, the new ones continue its sequence and block numbers.
    """
    require(by, Action.MANAGE_ALLOCATION_LISTS, study=study, site=site)
    _require_unblinded(by, study=study)
    protocol, spec = _randomisation(study)
    if not 1 <= size <= MAX_LIST_SIZE:
        raise ValidationError(
            {"size": _("Give a size from 1 to %(max)d slots.") % {"max": MAX_LIST_SIZE}}
        )
    if seed is None:
        seed = secrets.randbits(63)
    elif not 0 <= seed <= MAX_SEED:
        raise ValidationError({"seed": _("The seed must be a whole number from 0 to 2⁶³ − 1.")})
    blocks = generate_blocks(
        arms=protocol.arm_codes,
        ratio=spec.ratio,
        block_sizes=spec.block_sizes,
        n=size,
        seed=seed,
    )
    with transaction.atomic(), audited(by=by, reason="allocation list generated"):
        _lock_for_new_list(study=study, site=site)
        last_sequence, last_block = _site_end(study=study, site=site)
        allocation_list = AllocationList.objects.create(
            study=study,
            site=site,
            source=AllocationList.Source.GENERATED,
            seed=seed,
            block_sizes=list(spec.block_sizes),
            note=note,
            created_by=by,
        )
        kits = _new_kit_numbers(study=study, count=len(blocks))
        Allocation.objects.bulk_create(
            Allocation(
                allocation_list=allocation_list,
                study=study,
                site=site,
                sequence=last_sequence + index,
                block_number=last_block + block_number,
                block_size=block_size,
                arm=arm,
                kit_number=kit,
            )
            for index, ((block_number, block_size, arm), kit) in enumerate(
                zip(blocks, kits, strict=True), start=1
            )
        )
    return allocation_list


def _problem(row: int, column: str, message: str) -> str:
    return _("Row %(row)d, column %(column)s: %(message)s") % {
        "row": row,
        "column": column,
        "message": message,
    }


def _positive_int(value: str, *, row: int, column: str, problems: list[str]) -> int | None:
    try:
        number = int(value)
    except ValueError:
        problems.append(
            _problem(row, column, _("%(value)r is not a whole number.") % {"value": value})
        )
        return None
    if number < 1:
        problems.append(_problem(row, column, _("must be 1 or more, not %(n)d.") % {"n": number}))
        return None
    return number


@dataclass(frozen=True)
class _ImportRow:
    row: int
    sequence: int | None
    block_number: int | None
    block_size: int | None
    arm: str
    kit_number: str


def allocation_list_import(
    *, study, site, rows: Iterable[Mapping[str, object]], by, note: str = ""
) -> AllocationList:
    """Import a site's allocation list from rows with the columns of `IMPORT_COLUMNS`.

    Rows are numbered as in a spreadsheet, the header being row 1. Every problem is
    reported at once, each naming its row and column, and nothing is saved unless the
    whole file is valid: sequences consecutive (continuing the site's existing slots),
    arms of the protocol, kit numbers new to the study, and each block complete and
    balanced to the protocol's ratio.
    """
    require(by, Action.MANAGE_ALLOCATION_LISTS, study=study, site=site)
    _require_unblinded(by, study=study)
    protocol, spec = _randomisation(study)
    rows = list(rows)
    if not rows:
        raise ValidationError(_("The file has no rows."))
    missing = [column for column in IMPORT_COLUMNS if column not in rows[0]]
    if missing:
        raise ValidationError(
            _("Missing column(s) %(missing)s: the file needs the columns %(columns)s.")
            % {"missing": ", ".join(missing), "columns": ", ".join(IMPORT_COLUMNS)}
        )
    if len(rows) > MAX_LIST_SIZE:
        raise ValidationError(
            _("The file has %(n)d rows; at most %(max)d are allowed.")
            % {"n": len(rows), "max": MAX_LIST_SIZE}
        )

    with transaction.atomic(), audited(by=by, reason="allocation list imported"):
        _lock_for_new_list(study=study, site=site)
        last_sequence, last_block = _site_end(study=study, site=site)
        study_kits = set(
            Allocation.objects.filter(study=study).values_list("kit_number", flat=True)
        )
        file_kits: dict[str, int] = {}
        problems: list[str] = []
        parsed = [
            _import_row(
                raw,
                row=index + 2,
                expected_sequence=last_sequence + index + 1,
                last_block=last_block,
                site=site,
                study=study,
                arms=protocol.arm_codes,
                study_kits=study_kits,
                file_kits=file_kits,
                problems=problems,
            )
            for index, raw in enumerate(rows)
        ]
        problems += _block_problems(parsed, ratio=spec.ratio)
        if problems:
            raise ValidationError(problems)

        allocation_list = AllocationList.objects.create(
            study=study,
            site=site,
            source=AllocationList.Source.IMPORTED,
            seed=None,
            block_sizes=sorted({entry.block_size for entry in parsed}),
            note=note,
            created_by=by,
        )
        Allocation.objects.bulk_create(
            Allocation(
                allocation_list=allocation_list,
                study=study,
                site=site,
                sequence=entry.sequence,
                block_number=entry.block_number,
                block_size=entry.block_size,
                arm=entry.arm,
                kit_number=entry.kit_number,
            )
            for entry in parsed
        )
    return allocation_list


def _import_row(
    raw, *, row, expected_sequence, last_block, site, study, arms, study_kits, file_kits, problems
) -> _ImportRow:
    """Parse one row, adding its problems to `problems` and its kit number to `file_kits`."""
    values = {column: str(raw.get(column) or "").strip() for column in IMPORT_COLUMNS}
    sequence = _positive_int(values["sequence"], row=row, column="sequence", problems=problems)
    if sequence is not None and sequence != expected_sequence:
        problems.append(
            _problem(
                row,
                "sequence",
                _("expected %(expected)d (sequences are consecutive), found %(n)d.")
                % {"expected": expected_sequence, "n": sequence},
            )
        )
    block_number = _positive_int(
        values["block_number"], row=row, column="block_number", problems=problems
    )
    if block_number is not None and block_number <= last_block:
        problems.append(
            _problem(
                row,
                "block_number",
                _("site %(site)s already has blocks up to %(last)d.")
                % {"site": site.code, "last": last_block},
            )
        )
    block_size = _positive_int(
        values["block_size"], row=row, column="block_size", problems=problems
    )
    arm = values["arm"]
    if arm not in arms:
        problems.append(
            _problem(
                row,
                "arm",
                _("unknown arm %(arm)r (the protocol's arms: %(arms)s).")
                % {"arm": arm, "arms": ", ".join(arms)},
            )
        )
    kit = values["kit_number"]
    if not kit:
        problems.append(_problem(row, "kit_number", _("the kit number is empty.")))
    elif len(kit) > Allocation._meta.get_field("kit_number").max_length:
        problems.append(_problem(row, "kit_number", _("the kit number is too long.")))
    elif kit in file_kits:
        problems.append(
            _problem(
                row,
                "kit_number",
                _("%(kit)s is already on row %(other)d.") % {"kit": kit, "other": file_kits[kit]},
            )
        )
    elif kit in study_kits:
        problems.append(
            _problem(
                row,
                "kit_number",
                _("%(kit)s is already used in study %(study)s.")
                % {"kit": kit, "study": study.code},
            )
        )
    else:
        file_kits[kit] = row
    return _ImportRow(row, sequence, block_number, block_size, arm, kit)


def _block_problems(parsed: list[_ImportRow], *, ratio: Mapping[str, int]) -> list[str]:
    """Each block is one run of rows in increasing block order, as long as its size, and
    balanced to the ratio."""
    if any(None in (e.sequence, e.block_number, e.block_size) for e in parsed):
        return []  # the rows' own problems are reported; their blocks cannot be checked
    per_block = sum(ratio.values())
    blocks: list[list[_ImportRow]] = []
    for entry in parsed:
        if blocks and blocks[-1][0].block_number == entry.block_number:
            blocks[-1].append(entry)
        else:
            blocks.append([entry])
    problems: list[str] = []
    previous = 0
    for block in blocks:
        first, number = block[0], block[0].block_number
        if number <= previous:
            problems.append(
                _problem(
                    first.row,
                    "block_number",
                    _(
                        "block %(n)d comes after block %(previous)d: blocks are consecutive runs "
                        "of rows in increasing order."
                    )
                    % {"n": number, "previous": previous},
                )
            )
            continue
        previous = number
        sizes = {entry.block_size for entry in block}
        if len(sizes) > 1:
            problems.append(
                _problem(
                    first.row,
                    "block_size",
                    _("the rows of block %(n)d give different sizes.") % {"n": number},
                )
            )
            continue
        size = first.block_size
        if size % per_block:
            problems.append(
                _problem(
                    first.row,
                    "block_size",
                    _("%(size)d is not a multiple of the ratio's total %(total)d.")
                    % {"size": size, "total": per_block},
                )
            )
            continue
        if len(block) != size:
            problems.append(
                _problem(
                    first.row,
                    "block_size",
                    _("block %(n)d has %(rows)d rows but size %(size)d.")
                    % {"n": number, "rows": len(block), "size": size},
                )
            )
            continue
        expected = {arm: count * size // per_block for arm, count in ratio.items()}
        if Counter(entry.arm for entry in block) != Counter(expected):
            problems.append(
                _problem(
                    first.row,
                    "arm",
                    _("block %(n)d is not balanced to the ratio: it needs %(expected)s.")
                    % {
                        "n": number,
                        "expected": ", ".join(f"{n} × {arm}" for arm, n in expected.items()),
                    },
                )
            )
    return problems


def allocation_take(*, patient, by) -> Allocation:
    """Randomise a patient: give them the lowest free slot of their site's list.

    The site's row is locked first (SELECT ... FOR UPDATE), so concurrent enrolments at
    one site queue there and each takes a different slot, in sequence order. Enrolment
    calls this inside its own transaction; a patient is randomised once only.
    """
    require(by, Action.RANDOMISE, patient=patient)
    study, site = patient.study, patient.site
    if patient.status in NOT_RANDOMISABLE:
        raise ValidationError(
            _("Patient %(code)s is %(status)s and cannot be randomised.")
            % {"code": patient.subject_code, "status": patient.get_status_display().lower()}
        )
    _randomisation(study)
    with transaction.atomic(), audited(by=by, reason="randomisation"):
        _lock_study_site(study=study, site=site)
        require_unlocked(patient=patient)
        existing = Allocation.objects.filter(patient=patient).first()
        if existing is not None:
            raise ValidationError(
                _("Patient %(code)s is already randomised (kit %(kit)s).")
                % {"code": patient.subject_code, "kit": existing.kit_number}
            )
        slots = Allocation.objects.filter(study=study, site=site)
        slot = slots.free().order_by("sequence").first()
        if slot is None:
            if slots.exists():
                message = _(
                    "The allocation list of site %(site)s is used up: ask an unblinded data "
                    "manager to add a list before randomising more patients."
                )
            else:
                message = _(
                    "Site %(site)s has no allocation list: ask an unblinded data manager to "
                    "generate or import one."
                )
            raise ValidationError(message % {"site": site.code})
        slot.patient = patient
        slot.allocated_at = timezone.now()
        slot.allocated_by = by
        slot.save(update_fields=["patient", "allocated_at", "allocated_by"])
    return slot
