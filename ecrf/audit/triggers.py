"""Database-level protection of the audit trail.

pghistory's own `append_only` option uses pgtrigger triggers, which code can switch
off with `pgtrigger.ignore()`. These triggers have no such switch: an UPDATE or
DELETE of an audit row raises, whatever the code path. They are (re)installed after
every migrate on every pghistory event table and on the account event table, so a
model tracked later is protected without anyone remembering to do it.
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

TRIGGER_SQL = """
CREATE OR REPLACE TRIGGER ecrf_audit_append_only
BEFORE UPDATE OR DELETE ON {table}
FOR EACH ROW EXECUTE FUNCTION ecrf_audit_refuse_change();
"""


def audit_tables() -> list[str]:
    import pghistory.models

    from ecrf.audit.models import AuthEvent

    tables = [
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, pghistory.models.Event) and not model._meta.proxy
    ]
    return sorted({*tables, AuthEvent._meta.db_table})


def install_append_only_triggers(using: str = "default", **kwargs) -> None:
    from django.db import connections

    conn = connections[using] if using else connection
    existing = set(conn.introspection.table_names())
    with conn.cursor() as cursor:
        cursor.execute(FUNCTION_SQL)
        for table in audit_tables():
            if table in existing:
                cursor.execute(TRIGGER_SQL.format(table=conn.ops.quote_name(table)))
