"""The locks the Makefile installs (with --require-hashes) hold every pin of the
requirements files, at the same version: a pin changed without `make lock` fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.M)


def pins(name: str) -> dict[str, str]:
    text = (BASE_DIR / name).read_text()
    return {re.sub(r"[-_.]+", "-", n).lower(): v for n, v in PIN.findall(text)}


@pytest.mark.parametrize(
    ("requirements", "lock"),
    [("requirements.txt", "requirements.lock"), ("requirements-dev.txt", "requirements-dev.lock")],
)
def test_every_pin_is_in_its_lock_at_the_same_version(requirements, lock):
    locked = pins(lock)
    stale = {n: (v, locked.get(n)) for n, v in pins(requirements).items() if locked.get(n) != v}
    assert not stale, f"{lock} is stale (pin, locked): {stale}; run `make lock`"


def test_the_locks_pin_every_package_with_a_hash_and_agree_with_each_other():
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {n: v for n, v in dev.items() if n in runtime} == runtime
    for lock in ("requirements.lock", "requirements-dev.lock"):
        blocks = re.split(r"\n(?=[A-Za-z0-9])", (BASE_DIR / lock).read_text())
        unhashed = [b.split()[0] for b in blocks if PIN.match(b) and "--hash=sha256:" not in b]
        assert not unhashed, f"{lock}: no hash for {unhashed}"
