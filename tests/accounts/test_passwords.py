"""Passwords are stored with Argon2 (the tests hash faster: see tests/conftest.py)."""

from __future__ import annotations

import ecrf.settings


def test_production_hashes_passwords_with_argon2_and_reads_older_pbkdf2():
    assert ecrf.settings.PASSWORD_HASHERS == [
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
