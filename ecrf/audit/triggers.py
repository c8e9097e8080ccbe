"""Database-level protection of the audit trail.

pghistory's own `append_only` option uses pgtrigger triggers, which code can switch
off with `pgtrigger.ignore()`. These triggers have no such switch: an UPDATE or
DELETE of an audit row raises, whatever the code path, and so does a TRUNCATE of an
audit table by any role but a superuser. They are (re)installed after every migrate on
every audit table, so a model tracked later is protected without anyone remembering to
do it. They are the second guard: the first is that the application's database role
holds only INSERT and SELECT on these tables and owns none of them (`ecrf.audit.roles`).

The audit tables are every pghistory event table, the account events, Django admin's
log, `pghistory_context`, and every model that declares itself an audit record with a
class attribute (the audit app is a leaf: it never names the apps above it):

    audit_record = True                      # inserted and read, never changed
    audit_updatable = ("voided_at", ...)     # ...but for these fields, which a service
                                             # fills in once (its own triggers say when)

`pghistory_context` can be strictly append-only here: with PGHISTORY_CONTEXT_FIELD a
`ContextJSONField` (settings), pghistory's triggers copy the context into each event
row and never write that table (only `_pgh_attach_context()`, the ContextForeignKey
mode's upsert, does: INSERT ... ON CONFLICT DO UPDATE, which needs UPDATE). So the
table stays empty, and if some code ever wrote it, a row could never be rewritten
afterwards to change what an event's context said. Switching to ContextForeignKey would
need that UPDATE: tests/audit/test_db_roles.py checks the setting and the empty table.
"""

from __future__ import annotations

from django.apps import apps
from django.db import connection

FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION ecrf_audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit rows are append-only: % on %.% refused',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

# A superuser may truncate: the test harness empties its database between transactional
# tests with TRUNCATE, and a superuser could drop the trigger anyway. Every other role,
# the owner of the tables included, is refused.
TRUNCATE_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION ecrf_audit_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit tables are never emptied: TRUNCATE of %.% refused',
        TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

TRIGGER_SQL = """
CREATE OR REPLACE TRIGGER ecrf_audit_append_only
BEFORE UPDATE OR DELETE ON {table}
FOR EACH ROW EXECUTE FUNCTION ecrf_audit_refuse_change();
"""

TRUNCATE_TRIGGER_SQL = """
CREATE OR REPLACE TRIGGER ecrf_audit_never_truncated
BEFORE TRUNCATE ON {table}
FOR EACH STATEMENT EXECUTE FUNCTION ecrf_audit_refuse_truncate();
"""


def audit_record_tables() -> dict[str, tuple[str, ...]]:
    """Every audit table, with the columns the application may update (mostly none)."""
    import pghistory.models
    from django.contrib.admin.models import LogEntry

    from ecrf.audit.models import AuthEvent

    tables: dict[str, tuple[str, ...]] = {
        model._meta.db_table: ()
        for model in apps.get_models()
        if issubclass(model, pghistory.models.Event) and not model._meta.proxy
    }
    for model in (AuthEvent, LogEntry, pghistory.models.Context):
        tables[model._meta.db_table] = ()
    for model in apps.get_models():
        if getattr(model, "audit_record", False):
            updatable = getattr(model, "audit_updatable", ())
            tables[model._meta.db_table] = tuple(
                model._meta.get_field(name).column for name in updatable
            )
    return dict(sorted(tables.items()))


def audit_tables() -> list[str]:
    """The strictly append-only audit tables: no row is ever updated or deleted."""
    return [table for table, updatable in audit_record_tables().items() if not updatable]


def install_append_only_triggers(using: str = "default", **kwargs) -> None:
    from django.db import connections

    conn = connections[using] if using else connection
    existing = set(conn.introspection.table_names())
    with conn.cursor() as cursor:
        cursor.execute(FUNCTION_SQL)
        cursor.execute(TRUNCATE_FUNCTION_SQL)
        for table, updatable in audit_record_tables().items():
            if table not in existing:
                continue
            quoted = conn.ops.quote_name(table)
            if not updatable:
                cursor.execute(TRIGGER_SQL.format(table=quoted))
            cursor.execute(TRUNCATE_TRIGGER_SQL.format(table=quoted))
