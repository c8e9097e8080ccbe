"""`manage.py setup_db_roles`: the owner and the application roles, and their rights.

Run it as a superuser (DATABASE_URL naming one), once per database and again after
restoring a dump; it is idempotent. Role names come from DB_OWNER_ROLE and DB_APP_ROLE
(default ecrf_owner, ecrf_app), passwords from DB_OWNER_PASSWORD and DB_APP_PASSWORD:
a password left unset leaves an existing role's password as it is (a new role then has
none, and logs in only where pg_hba.conf trusts it, as on the embedded server's socket).
Passwords are hashed (SCRAM-SHA-256) before they reach the server, so no log shows them.
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.utils import IntegrityError, ProgrammingError

from ecrf.audit.roles import apply_grants, role_names

ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT"


class Command(BaseCommand):
    help = (
        "Create (or update) the database owner role, which runs migrate, and the application "
        "role, which cannot change or erase the audit trail; grant both their rights."
    )

    def add_arguments(self, parser):
        owner, app = role_names()
        parser.add_argument("--owner", default=owner, help="Owner role (DB_OWNER_ROLE).")
        parser.add_argument("--app", default=app, help="Application role (DB_APP_ROLE).")

    def handle(self, *args, owner, app, **options):
        if owner == app:
            raise CommandError("DB_OWNER_ROLE and DB_APP_ROLE must name two different roles.")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
            )
            me, superuser = cursor.fetchone()
        if not superuser:
            raise CommandError(
                f"setup_db_roles must run as a superuser; DATABASE_URL connects as {me}."
            )
        for role in (owner, app):
            if role == me:
                raise CommandError(f"{role} is the role running this command: choose another.")
        with transaction.atomic():
            self._role(owner, os.environ.get("DB_OWNER_PASSWORD", ""), member_of_none=False)
            self._role(app, os.environ.get("DB_APP_PASSWORD", ""), member_of_none=True)
            apply_grants(owner=owner, app=app)
        self.stdout.write(
            f"Database {connection.settings_dict['NAME']}: {owner} owns the schema and runs "
            f"migrate; {app} runs the application, with INSERT and SELECT only on the audit "
            "tables."
        )

    def _role(self, name: str, password: str, *, member_of_none: bool) -> None:
        quoted = connection.ops.quote_name(name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [name])
            row = cursor.fetchone()
            if row and row[0]:
                raise CommandError(f"{name} is a superuser: choose a role of its own.")
            if row is None:
                try:
                    # Another database's setup may create the same role at the same moment
                    # (roles belong to the whole cluster): then it is there, and altered.
                    with transaction.atomic():
                        cursor.execute(f"CREATE ROLE {quoted} {ATTRIBUTES}")
                except (IntegrityError, ProgrammingError):
                    pass
            clause = ATTRIBUTES
            if password:
                connection.ensure_connection()
                pgconn = connection.connection.pgconn
                hashed = pgconn.encrypt_password(
                    password.encode(), name.encode(), b"scram-sha-256"
                ).decode()
                clause += f" PASSWORD '{hashed}'"
            cursor.execute(f"ALTER ROLE {quoted} {clause}")
            if member_of_none:
                # The application inherits nothing: it is member of no role.
                cursor.execute(
                    "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
                    "JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = %s",
                    [name],
                )
                for (group,) in cursor.fetchall():
                    cursor.execute(f"REVOKE {connection.ops.quote_name(group)} FROM {quoted}")
