"""The two database roles: the owner, who migrates, and the application, which cannot
erase the audit trail.

The owner owns every table, sequence and function of the schema: only it (or a superuser)
can ALTER, DROP or disable a trigger. The application's role owns nothing and is no
superuser, so it can neither drop nor disable a trigger nor set
`session_replication_role` (which turns triggers off); it holds ordinary DML on the
tables, never TRUNCATE, and only INSERT and SELECT on the audit tables
(`ecrf.audit.triggers.audit_record_tables`), plus UPDATE of the few columns an audit
record declares updatable (a signature's voiding).

`apply_grants` is run by `manage.py setup_db_roles` and again after every migrate (tables
created later get ordinary DML from the default privileges: the audit ones are narrowed
here, in the migrate's transaction).
"""

from __future__ import annotations

import os

from django.db import connections, transaction

from ecrf.audit.triggers import audit_record_tables

DEFAULT_OWNER_ROLE = "ecrf_owner"
DEFAULT_APP_ROLE = "ecrf_app"
SCHEMA = "public"


def role_names() -> tuple[str, str]:
    """The owner's and the application's role names, from the environment."""
    return (
        os.environ.get("DB_OWNER_ROLE") or DEFAULT_OWNER_ROLE,
        os.environ.get("DB_APP_ROLE") or DEFAULT_APP_ROLE,
    )


def _q(conn, name: str) -> str:
    return conn.ops.quote_name(name)


def _transfer_ownership(conn, cursor, owner: str) -> None:
    """Make `owner` own every table, view, standalone sequence and function of the schema
    (possible as a superuser; run as the owner, everything is its own already)."""
    cursor.execute(
        """
        SELECT c.relname, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND pg_get_userbyid(c.relowner) <> %s
          -- a serial or identity sequence follows its table
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid
                          AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
        ORDER BY c.relkind <> 'r', c.relname
        """,
        [SCHEMA, owner],
    )
    kinds = {"v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE", "f": "FOREIGN TABLE"}
    for name, kind in cursor.fetchall():
        statement = kinds.get(kind, "TABLE")
        cursor.execute(f"ALTER {statement} {SCHEMA}.{_q(conn, name)} OWNER TO {_q(conn, owner)}")
    cursor.execute(
        """
        SELECT p.oid::regprocedure::text FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = %s AND pg_get_userbyid(p.proowner) <> %s
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid
                          AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e')
        """,
        [SCHEMA, owner],
    )
    for (signature,) in cursor.fetchall():
        cursor.execute(f"ALTER ROUTINE {signature} OWNER TO {_q(conn, owner)}")


def apply_grants(*, owner: str, app: str, using: str = "default") -> None:
    """Ownership, schema rights, table and sequence grants and default privileges, in one
    transaction (the application never sees a moment without its rights)."""
    conn = connections[using]
    o, a = _q(conn, owner), _q(conn, app)
    existing = set(conn.introspection.table_names())
    with transaction.atomic(using=using), conn.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if cursor.fetchone()[0]:  # setup_db_roles; after a migrate by the owner, all is its own
            _transfer_ownership(conn, cursor, owner)
            database = _q(conn, conn.settings_dict["NAME"])
            cursor.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {o}, {a}")
            cursor.execute(f"REVOKE CREATE ON SCHEMA {SCHEMA} FROM PUBLIC")
            cursor.execute(f"REVOKE CREATE ON SCHEMA {SCHEMA} FROM {a}")
            cursor.execute(f"GRANT USAGE, CREATE ON SCHEMA {SCHEMA} TO {o}")
            cursor.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {a}")
        # Ordinary DML everywhere, never TRUNCATE, REFERENCES or TRIGGER.
        cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM {a}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO {a}"
        )
        # The migration history is the owner's to write; the application reads it (runserver
        # and `check` compare it with the code).
        if "django_migrations" in existing:
            cursor.execute(f"REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {a}")
        for table, updatable in audit_record_tables().items():
            if table not in existing:
                continue
            quoted = _q(conn, table)
            cursor.execute(f"REVOKE ALL ON {quoted} FROM {a}, PUBLIC")
            cursor.execute(f"GRANT SELECT, INSERT ON {quoted} TO {a}")
            if updatable:
                columns = ", ".join(_q(conn, column) for column in updatable)
                cursor.execute(f"GRANT UPDATE ({columns}) ON {quoted} TO {a}")
        cursor.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {SCHEMA} FROM {a}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO {a}")
        # What later migrations create, as the owner: ordinary DML until the post-migrate
        # call of this function narrows the new audit tables, in the same migrate.
        default = f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {SCHEMA}"
        cursor.execute(f"{default} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {a}")
        cursor.execute(f"{default} GRANT USAGE, SELECT ON SEQUENCES TO {a}")


def roles_set_up(*, app: str, using: str = "default") -> bool:
    """Whether `setup_db_roles` was run on this database for this application role (its
    default privileges are there)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            """
            SELECT EXISTS (
                SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) acl
                JOIN pg_roles r ON r.oid = acl.grantee
                WHERE r.rolname = %s
            )
            """,
            [app],
        )
        return cursor.fetchone()[0]


def regrant_after_migrate(using: str = "default", **kwargs) -> None:
    """post_migrate: the tables this migrate created get the application's grants (the
    audit ones only INSERT and SELECT). Nothing where the roles were never set up."""
    owner, app = role_names()
    if roles_set_up(app=app, using=using):
        apply_grants(owner=owner, app=app, using=using)
