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
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "SDV_SEED"}}
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


def test_missing_sdv_seed_without_debug_fails_loudly():
    """The SDV sample's seed is the deployment's secret: never a default anyone can read."""
    result = start_django(SECRET_KEY="x" * 50, DEBUG="0", ALLOWED_HOSTS="ecrf.example.org")
    assert result.returncode != 0
    assert "SDV_SEED is not set" in result.stderr


def test_secret_key_and_debug_off_start_cleanly():
    result = start_django(
        SECRET_KEY="x" * 50, SDV_SEED="y" * 32, DEBUG="0", ALLOWED_HOSTS="ecrf.example.org"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_demo_runs_with_debug_off_and_a_key_of_its_own(tmp_path):
    """`make demo` is what a user first meets: production's error pages, not Django's
    technical ones, and no shipped signing key."""
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.SECRET_KEY == open(s.VAR_DIR / 'demo-secret-key').read().strip(), "
        "len(s.SECRET_KEY) >= 50, sorted(s.ALLOWED_HOSTS), s.STORAGES['staticfiles']['BACKEND'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    env.update(DEMO="1", DEBUG="0", DJANGO_SETTINGS_MODULE="ecrf.settings")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=BASE_DIR, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False", "True", "True", "['127.0.0.1',", "'localhost']",
        "whitenoise.storage.CompressedManifestStaticFilesStorage",
    ]  # fmt: skip


def test_makefile_demo_target_turns_debug_off():
    makefile = (BASE_DIR / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "DEMO=1 DEBUG=0" in recipe
