"""`make audit`, first half: the locked packages against the known vulnerabilities.

pip-audit reads requirements-dev.lock (every package, runtime and tools, pinned with its
hashes: nothing to resolve, nothing installed) and asks an advisory source: PyPI's, else
OSV's. A vulnerability fails the run. When no source answers (offline, a timeout, or an
index that mirrors the packages but not PyPI's JSON API, where every package comes back
"not found"), the step is skipped with a message instead: it says nothing either way, and
a network outage must not block CI.

    python scripts/audit_dependencies.py [LOCK_FILE]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
SERVICES = ("pypi", "osv")
TIMEOUT_SECONDS = 20


def verdict(report: dict | None, service: str) -> tuple[int | None, str]:
    """(exit code, message) from pip-audit's JSON report; exit code None: no answer."""
    if report is None:
        return None, f"{service}: no answer"
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    if not audited:
        return None, f"{service}: no package could be looked up ({len(dependencies)} skipped)"
    vulnerable = [d for d in audited if d.get("vulns")]
    skipped = [d["name"] for d in dependencies if "skip_reason" in d]
    note = f" ({len(skipped)} not found: {', '.join(skipped)})" if skipped else ""
    if not vulnerable:
        return 0, (
            f"pip-audit: {len(audited)} packages checked against {service}: "
            f"no known vulnerability{note}."
        )
    lines = [f"pip-audit: {len(vulnerable)} vulnerable package(s) ({service}):"]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            lines.append(
                f"  {dependency['name']}=={dependency['version']}: {vuln['id']} (fixed in {fixed})"
            )
    lines.append("Upgrade the pin in requirements*.txt, then `make lock`.")
    return 1, "\n".join(lines)


def audit(lock: Path, service: str) -> tuple[int | None, str]:
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "report.json"
        command = [
            sys.executable, "-m", "pip_audit", "--requirement", str(lock), "--disable-pip",
            "--require-hashes", "--vulnerability-service", service, "--format", "json",
            "--output", str(output), "--progress-spinner", "off",
            "--timeout", str(TIMEOUT_SECONDS),
        ]  # fmt: skip
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS * 30
            )
        except subprocess.TimeoutExpired:
            return None, f"{service}: timed out"
        if not output.exists() or not output.read_text().strip():
            reason = (result.stderr.strip().splitlines() or ["no report"])[-1]
            if "ConnectionError" in reason or "Timeout" in reason or "resolve" in reason:
                return None, f"{service}: {reason[:200]}"
            # pip-audit itself failed (a bad lock file...): that is an error, not an outage.
            return 2, f"pip-audit failed with {service}:\n{result.stderr}"
        return verdict(json.loads(output.read_text()), service)


def main(argv: list[str]) -> int:
    lock = Path(argv[1]) if len(argv) > 1 else BASE_DIR / "requirements-dev.lock"
    unanswered = []
    for service in SERVICES:
        code, message = audit(lock, service)
        if code is not None:
            print(message)
            return code
        unanswered.append(message)
    print(
        "pip-audit SKIPPED: no advisory source answered, so the packages were not checked "
        f"({'; '.join(unanswered)})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
