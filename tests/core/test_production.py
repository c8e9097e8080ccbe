"""Production settings: `check --deploy` clean, HTTPS from the environment, a CSP without
inline script or style, and no signed-in page kept in a cache."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

BASE_DIR = Path(__file__).resolve().parents[2]
# What the README's deployment section asks for, behind a proxy that ends TLS.
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "SDV_SEED": secrets.token_urlsafe(32),
    "ALLOWED_HOSTS": "ecrf.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://ecrf.example.org",
    "SITE_URL": "https://ecrf.example.org",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}
SECURITY_VARIABLES = {
    "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD", "SECURE_COOKIES", "SECURE_PROXY_SSL_HEADER", "DEMO",
    "DB_CONN_MAX_AGE", "DB_CONN_HEALTH_CHECKS",
}  # fmt: skip


def run_production(args: list[str], **overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in SECURITY_VARIABLES | PRODUCTION.keys()}
    env.update(PRODUCTION, DJANGO_SETTINGS_MODULE="ecrf.settings", **overrides)
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_finds_no_warning_with_the_production_environment():
    result = run_production(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_when_https_is_turned_off():
    """The check above would catch a deployment that forgot HTTPS."""
    result = run_production(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="0",
    )
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def test_production_settings_read_https_and_connections_from_the_environment():
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "d = s.DATABASES['default']; "
        "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "'|'.join(s.SECURE_PROXY_SSL_HEADER), d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'], "
        "s.SESSION_ENGINE, s.STORAGES['staticfiles']['BACKEND'])"
    )
    defaults = run_production(["-c", script])
    assert defaults.returncode == 0, defaults.stderr
    assert defaults.stdout.split() == [
        "False", "True", "31536000", "True", "True", "True",
        "HTTP_X_FORWARDED_PROTO|https", "600", "True",
        "django.contrib.sessions.backends.db",
        "whitenoise.storage.CompressedManifestStaticFilesStorage",
    ]  # fmt: skip
    chosen = run_production(["-c", script], SECURE_HSTS_SECONDS="3600", DB_CONN_MAX_AGE="60")
    assert chosen.stdout.split()[2] == "3600" and chosen.stdout.split()[7] == "60"


def test_a_proxy_header_without_its_value_stops_start_up_naming_the_variable():
    result = run_production(
        ["-c", "import django; django.setup()"], SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO"
    )
    assert result.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER must be a header and a value" in result.stderr


def test_makefile_serve_runs_gunicorn_with_debug_off_after_collectstatic():
    makefile = (BASE_DIR / "Makefile").read_text()
    recipe = makefile.split("\nserve:", 1)[1].split("\n\n", 1)[0]
    assert "DEBUG=0" in recipe
    assert recipe.index("collectstatic") < recipe.index("gunicorn ecrf.wsgi")
    runtime = (BASE_DIR / "requirements.txt").read_text()
    assert re.search(r"^gunicorn==\d", runtime, re.M)
    assert not re.search(r"^pytest", runtime, re.M), "test tools belong in requirements-dev.txt"


# --- Headers on the pages --------------------------------------------------------------

INLINE = [
    re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),  # a script with a body
    re.compile(r"<style\b", re.I),
    re.compile(r"\sstyle\s*=", re.I),
    re.compile(r"\son[a-z]+\s*=", re.I),
    re.compile(r"javascript:", re.I),
]


def assert_no_inline_code(html: str, page: str) -> None:
    for pattern in INLINE:
        found = pattern.search(html)
        assert not found, f"{page}: inline {found.group(0)!r} is refused by the CSP"


def test_every_page_sends_a_csp_without_inline_script_or_style(client, world):
    response = client.get(reverse("login"))
    policy = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response["Content-Security-Policy"]
    assert_no_inline_code(response.content.decode(), "login")


@pytest.mark.parametrize(
    "path",
    [
        "/studies/",
        "/studies/NCT00479934/patients/",
        "/studies/NCT00479934/patients/new/",
        "/studies/NCT00479934/nowhere/",
        "/studies/NCT00479934/safety/adverse-events/",
        "/studies/NCT00479934/patients/PATIENT/",
    ],
)
def test_signed_in_pages_hold_no_inline_code_and_are_never_stored(client, world, path):
    path = path.replace("PATIENT", world.bxp_patients[0].subject_code)
    client.force_login(world.alice)
    response = client.get(path, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code in {200, 404}, path
    assert "Content-Security-Policy" in response
    cache_control = {v.strip() for v in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= cache_control
    assert_no_inline_code(response.content.decode(), path)


def test_the_403_page_holds_no_inline_code(client, world):
    client.force_login(world.monica)
    response = client.get("/studies/NCT00479934/patients/new/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    assert "no-store" in response["Cache-Control"]
    assert_no_inline_code(response.content.decode(), "403")


def test_the_login_page_of_an_anonymous_visitor_is_not_marked_by_the_signed_in_rule(client, db):
    response = client.get(reverse("login"))
    # Django's own login view forbids caching; the page holds no study data either way.
    assert response.status_code == 200
    assert "Content-Security-Policy" in response


def test_the_health_check_answers_anyone_over_plain_http_and_is_never_stored(
    client, world, settings, django_assert_num_queries
):
    from tests.two_factor import login_unverified

    settings.SECURE_SSL_REDIRECT = True
    # Anyone, over plain HTTP (a load balancer's probe inside the network): one query.
    with django_assert_num_queries(1):
        response = client.get("/health/")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert "no-store" in response["Cache-Control"]
    # A study page over plain HTTP is still sent to HTTPS.
    assert client.get("/studies/").status_code == 301
    # A data manager before the second factor reaches it too; it takes only GET.
    login_unverified(client, world.diane)
    assert client.get("/health/", secure=True).content == b"ok\n"
    assert client.post("/health/", secure=True).status_code == 405
