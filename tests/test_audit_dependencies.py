"""`make audit`'s dependency check: a vulnerability fails, an advisory source that does not
answer skips with a message (never a silent pass)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "audit_dependencies.py"
spec = importlib.util.spec_from_file_location("audit_dependencies", SCRIPT)
audit_dependencies = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit_dependencies)

CLEAN = {"name": "django", "version": "6.1.3", "vulns": []}
NOT_FOUND = {"name": "amqp", "skip_reason": "Dependency not found on PyPI and could not be audited"}
VULNERABLE = {
    "name": "gunicorn",
    "version": "20.0.0",
    "vulns": [{"id": "GHSA-hc5x-x2vx-497g", "fix_versions": ["22.0.0"], "description": "..."}],
}


def test_a_known_vulnerability_fails_naming_the_package_the_advisory_and_the_fix():
    code, message = audit_dependencies.verdict({"dependencies": [CLEAN, VULNERABLE]}, "pypi")
    assert code == 1
    assert "gunicorn==20.0.0: GHSA-hc5x-x2vx-497g (fixed in 22.0.0)" in message
    assert "make lock" in message


def test_no_vulnerability_passes_and_says_how_many_packages_were_checked():
    code, message = audit_dependencies.verdict({"dependencies": [CLEAN, NOT_FOUND]}, "osv")
    assert code == 0
    assert message.startswith("pip-audit: 1 packages checked against osv: no known vulnerability")
    assert "amqp" in message


def test_every_package_not_found_is_no_answer_not_a_pass():
    """An index that mirrors the packages but not PyPI's JSON API answers "not found" for
    each one: pip-audit itself then says "No known vulnerabilities found"."""
    code, message = audit_dependencies.verdict({"dependencies": [NOT_FOUND]}, "pypi")
    assert code is None
    assert "no package could be looked up" in message


def test_no_source_answering_skips_with_a_message(monkeypatch, capsys):
    asked = []

    def offline(lock, service):
        asked.append(service)
        return None, f"{service}: no answer"

    monkeypatch.setattr(audit_dependencies, "audit", offline)
    assert audit_dependencies.main(["audit_dependencies.py", "requirements-dev.lock"]) == 0
    assert asked == ["pypi", "osv"]
    assert "pip-audit SKIPPED: no advisory source answered" in capsys.readouterr().out


def test_the_second_source_is_asked_when_the_first_does_not_answer(monkeypatch, capsys):
    answers = {"pypi": (None, "pypi: no answer"), "osv": (1, "pip-audit: 1 vulnerable package")}
    monkeypatch.setattr(audit_dependencies, "audit", lambda lock, service: answers[service])
    assert audit_dependencies.main(["audit_dependencies.py"]) == 1
    assert "1 vulnerable package" in capsys.readouterr().out
