"""Bad environment variables stop the application with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
SMTP = "django.core.mail.backends.smtp.EmailBackend"


def start_django(**overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    env.update(overrides)
    env["DJANGO_SETTINGS_MODULE"] = "ecrf.settings"
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('ok')"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_missing_secret_key_without_debug_fails_loudly():
    result = start_django(DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DEBUG": "1", "DATABASE_URL": "mysql://root@localhost/ecrf"}, "must point at PostgreSQL"),
        ({"DEBUG": "1", "DATABASE_URL": "sqlite:///db.sqlite3"}, "must point at PostgreSQL"),
        ({"DEBUG": "1", "DATABASE_URL": "not a url"}, "DATABASE_URL"),
        (
            {"DEBUG": "1", "EMAIL_BACKEND": SMTP, "EMAIL_PORT": "twenty-five"},
            "EMAIL_PORT='twenty-five' is not an integer",
        ),
    ],
)
def test_bad_environment_value_names_the_variable(overrides, message):
    result = start_django(**overrides)
    assert result.returncode != 0
    assert message in result.stderr


def test_secret_key_and_debug_off_start_cleanly():
    result = start_django(SECRET_KEY="x" * 50, DEBUG="0", ALLOWED_HOSTS="ecrf.example.org")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
