"""The pure block generator: deterministic, balanced, and never far from balance."""

from __future__ import annotations

from itertools import groupby

import pytest

from ecrf.patients.randomisation import generate_blocks

ARMS = ("IMA", "PBO")
RATIO = {"IMA": 1, "PBO": 1}
SITES = ("STR", "LIB", "LIM", "PER", "BXP", "BXA", "PES", "VAL", "NAN", "PAR", "TLS", "TOU")


def blocks(n=100, seed=1, block_sizes=(2, 4), ratio=RATIO, arms=ARMS):
    return generate_blocks(arms=arms, ratio=ratio, block_sizes=block_sizes, n=n, seed=seed)


def test_same_seed_gives_the_same_list():
    assert blocks(seed=2026) == blocks(seed=2026)


def test_different_seeds_give_different_lists():
    assert blocks(seed=1) != blocks(seed=2)
    assert len({tuple(blocks(seed=seed)) for seed in range(20)}) == 20


def test_whole_blocks_until_n_slots():
    for n in (0, 1, 2, 3, 5, 40, 101):
        slots = blocks(n=n, seed=n)
        assert n <= len(slots) < n + 4
        last_block = [s for s in slots if s[0] == slots[-1][0]] if slots else []
        assert len(last_block) == (last_block[0][1] if last_block else 0)


def test_every_block_has_size_2_or_4_and_is_balanced():
    slots = blocks(n=1000, seed=7)
    sizes = set()
    for _number, block_iter in groupby(slots, key=lambda s: s[0]):
        block = list(block_iter)
        size = block[0][1]
        sizes.add(size)
        assert all(s[1] == size for s in block)
        assert len(block) == size
        arms = [s[2] for s in block]
        assert arms.count("IMA") == arms.count("PBO") == size // 2
    assert sizes == {2, 4}  # both sizes are drawn
    assert [n for n, _ in groupby(slots, key=lambda s: s[0])] == list(range(1, slots[-1][0] + 1))


@pytest.mark.parametrize("site", SITES)
def test_over_1000_patients_the_arms_never_differ_by_more_than_half_the_largest_block(site):
    seed = int.from_bytes(site.encode())
    slots = blocks(n=1000, seed=seed)
    difference = 0
    for position, (block, _size, arm) in enumerate(slots):
        difference += 1 if arm == "IMA" else -1
        assert abs(difference) <= 2  # half the largest block
        end_of_block = position + 1 == len(slots) or slots[position + 1][0] != block
        if end_of_block:
            assert difference == 0
    assert len(slots) >= 1000


def test_unequal_ratio_repeats_its_unit_in_each_block():
    slots = blocks(n=60, seed=3, ratio={"IMA": 2, "PBO": 1}, block_sizes=(3, 6))
    for _number, block_iter in groupby(slots, key=lambda s: s[0]):
        arms = [s[2] for s in block_iter]
        assert arms.count("IMA") == 2 * arms.count("PBO")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"block_sizes": (3,)}, "multiples"),
        ({"block_sizes": ()}, "multiples"),
        ({"ratio": {"IMA": 1}}, "ratio"),
        ({"ratio": {"IMA": 1, "PBO": 0}}, "ratio"),
        ({"n": -1}, "negative"),
    ],
)
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        blocks(**kwargs)
