"""The two database roles (issue 15): the application's role cannot change or erase the
audit trail, whatever SQL it sends; the owner, who migrates, cannot empty it either.

`setup_db_roles` runs against the test database with role names of this test database's
own (roles belong to the whole cluster, which other test databases share), and the roles
are dropped at the end, the tables given back to the role that ran the tests. The tests
connect as the roles with psycopg, beside Django's connection (a superuser's): they see
what is committed, the seed protocols' rows and audit events among it; the few tests
whose own writes they must see are transactional.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from unittest import mock

import pghistory
import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import errors

from ecrf.audit.roles import regrant_after_migrate
from ecrf.audit.triggers import audit_record_tables

pytestmark = pytest.mark.django_db
# For the tests whose own writes the roles' connections must see (committed, then flushed).
committed = pytest.mark.django_db(transaction=True)

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@dataclass(frozen=True)
class Roles:
    owner: str
    app: str
    password: str

    def connect(self, role: str) -> psycopg.Connection:
        db = connection.settings_dict
        return psycopg.connect(
            dbname=db["NAME"],
            host=db["HOST"] or None,
            port=db["PORT"] or None,
            user=role,
            password=self.password,
            # Each statement its own transaction (as the application's are): no lock held
            # against the flush at the end of the test, no stale view of the grants.
            autocommit=True,
        )


@pytest.fixture(scope="module")
def roles(django_db_setup, django_db_blocker):
    name = connection.settings_dict["NAME"][:40]
    password = secrets.token_urlsafe(16)
    made = Roles(owner=f"{name}_owner", app=f"{name}_app", password=password)
    environ = {"DB_OWNER_PASSWORD": password, "DB_APP_PASSWORD": password}
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            runner = cursor.fetchone()[0]
        with mock.patch.dict("os.environ", environ):
            call_command("setup_db_roles", owner=made.owner, app=made.app, stdout=StringIO())
    yield made
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        owner, app = (connection.ops.quote_name(r) for r in (made.owner, made.app))
        cursor.execute(f"REASSIGN OWNED BY {owner} TO {connection.ops.quote_name(runner)}")
        cursor.execute(f"DROP OWNED BY {app}, {owner}")
        cursor.execute(f"DROP ROLE {app}")
        cursor.execute(f"DROP ROLE {owner}")


@pytest.fixture
def as_app(roles):
    with roles.connect(roles.app) as conn:
        yield conn


def _privileges(conn, role: str, table: str) -> set[str]:
    return {
        privilege
        for privilege in PRIVILEGES
        if conn.execute(
            "SELECT has_table_privilege(%s, %s, %s)", (role, f"public.{table}", privilege)
        ).fetchone()[0]
    }


def _refused(conn, statement: str) -> errors.Error:
    with pytest.raises(errors.InsufficientPrivilege) as excinfo, conn.transaction():
        conn.execute(statement)
    return excinfo.value


def test_application_role_owns_nothing_and_is_no_superuser(roles, as_app):
    assert as_app.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles "
        "WHERE rolname = current_user"
    ).fetchone() == (False, False, False, False)
    owners = dict(
        as_app.execute(
            "SELECT pg_get_userbyid(relowner), count(*) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND relkind IN ('r', 'S', 'v') GROUP BY 1"
        ).fetchall()
    )
    assert set(owners) == {roles.owner}
    assert owners[roles.owner] > 100


def test_application_role_holds_only_insert_and_select_on_every_audit_table(roles, as_app):
    tables = audit_record_tables()
    assert {
        "pghistory_context",
        "django_admin_log",
        "audit_authevent",
        "patients_unblinding",
        "review_signature",
        "patients_patientevent",
        "review_signatureevent",
    } <= set(tables)
    for table, updatable in tables.items():
        assert _privileges(as_app, roles.app, table) == {"SELECT", "INSERT"}, table
        columns = [
            column
            for (column,) in as_app.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = %s",
                (table,),
            )
            if as_app.execute(
                "SELECT has_column_privilege(%s, %s, %s, 'UPDATE')",
                (roles.app, f"public.{table}", column),
            ).fetchone()[0]
        ]
        assert sorted(columns) == sorted(updatable), table
    assert audit_record_tables()["review_signature"] == ("voided_at", "voided_by_id", "void_reason")
    # The other tables: ordinary DML, never TRUNCATE nor a trigger of its own.
    assert _privileges(as_app, roles.app, "patients_patient") == {
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
    }


def test_application_role_cannot_update_delete_or_truncate_an_audit_table(as_app):
    # The seed protocols' audit events, committed for the session.
    events_before = as_app.execute("SELECT count(*) FROM studies_studyevent").fetchone()[0]
    assert events_before >= 2
    for table in audit_record_tables():
        column = as_app.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchone()[0]
        for statement in (
            f'UPDATE "{table}" SET "{column}" = "{column}"',
            f'DELETE FROM "{table}"',
            f'TRUNCATE "{table}"',
        ):
            error = _refused(as_app, statement)
            assert f"permission denied for table {table}" in str(error), statement
    assert as_app.execute("SELECT count(*) FROM studies_studyevent").fetchone()[0] == (
        events_before
    )


def test_application_role_cannot_drop_or_disable_the_triggers(as_app):
    for statement in (
        "DROP TRIGGER ecrf_audit_append_only ON {table}",
        "DROP TRIGGER ecrf_audit_never_truncated ON {table}",
        "ALTER TABLE {table} DISABLE TRIGGER ecrf_audit_append_only",
        "ALTER TABLE {table} DISABLE TRIGGER ALL",
        "ALTER TABLE {table} OWNER TO CURRENT_USER",
        "DROP TABLE {table}",
    ):
        for table in ("studies_studyevent", "audit_authevent", "django_admin_log"):
            error = _refused(as_app, statement.format(table=table))
            # "of relation" or "of table", as the statement names it
            assert str(error).startswith("must be owner of "), statement
            assert str(error).endswith(table), statement
    triggers = as_app.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'studies_studyevent'::regclass "
        "AND tgname LIKE 'ecrf_audit_%%' AND tgenabled = 'O'"
    ).fetchone()[0]
    assert triggers == 2


def test_application_role_cannot_switch_triggers_off_for_its_session(as_app):
    for statement in (
        "SET session_replication_role = replica",
        "SET LOCAL session_replication_role = replica",
        "SELECT set_config('session_replication_role', 'replica', false)",
    ):
        error = _refused(as_app, statement)
        assert 'permission denied to set parameter "session_replication_role"' in str(error)
    assert as_app.execute("SHOW session_replication_role").fetchone() == ("origin",)


@committed
def test_application_role_does_ordinary_work_and_it_is_audited(world, roles, as_app):
    patient = world.bxp_patients[0]
    with as_app.transaction():
        event_id = as_app.execute(
            "INSERT INTO audit_authevent (kind, username, user_agent, reason, at) "
            "VALUES ('login_failed', 'mallory', '', '', now()) RETURNING id"
        ).fetchone()[0]
        updated = as_app.execute(
            "UPDATE patients_patient SET screening_date = screening_date - 1 WHERE id = %s",
            (patient.pk,),
        ).rowcount
    assert updated == 1
    assert as_app.execute(
        "SELECT kind, username FROM audit_authevent WHERE id = %s", (event_id,)
    ).fetchone() == ("login_failed", "mallory")
    # The update's trigger wrote the event as the application role: INSERT is enough.
    labels = [e.pgh_label for e in patient.events.order_by("pgh_id")]
    assert labels[-1] == "update"
    patient.refresh_from_db()
    assert patient.events.last().screening_date == patient.screening_date


def test_owner_cannot_empty_an_audit_table_either(roles):
    with roles.connect(roles.owner) as as_owner:
        error = _refused(as_owner, "TRUNCATE studies_studyevent")
        assert "audit tables are never emptied" in str(error)
        assert as_owner.execute("SELECT count(*) FROM studies_studyevent").fetchone()[0] >= 2
        # Nor through a table that refers to one: the cascade reaches the downloads.
        error = _refused(as_owner, "TRUNCATE exports_exportjob CASCADE")
        assert "TRUNCATE of public.exports_exportdownload refused" in str(error)
        # Ordinary tables are the owner's to empty.
        as_owner.execute("TRUNCATE django_session")


@committed
def test_after_a_migrate_new_audit_tables_are_narrowed_to_insert_and_select(roles, as_app):
    # What the default privileges give a table created by a migration: ordinary DML.
    with connection.cursor() as cursor:
        cursor.execute(
            "GRANT UPDATE, DELETE, TRUNCATE ON audit_authevent TO "
            + connection.ops.quote_name(roles.app)
        )
    assert "TRUNCATE" in _privileges(as_app, roles.app, "audit_authevent")
    with mock.patch.dict("os.environ", {"DB_OWNER_ROLE": roles.owner, "DB_APP_ROLE": roles.app}):
        regrant_after_migrate()
    assert _privileges(as_app, roles.app, "audit_authevent") == {"SELECT", "INSERT"}


def test_migrate_leaves_other_databases_roles_alone(roles):
    # A database where setup_db_roles never ran for that role: the post-migrate step is a no-op.
    with mock.patch.dict("os.environ", {"DB_APP_ROLE": "ecrf_role_that_does_not_exist"}):
        regrant_after_migrate()


def test_pghistory_context_table_is_never_written(world):
    # The append-only pghistory_context relies on this: the context goes into each event
    # row (ContextJSONField), and pghistory's triggers never upsert that table.
    assert isinstance(settings.PGHISTORY_CONTEXT_FIELD, pghistory.ContextJSONField)
    patient = world.bxp_patients[0]
    with pghistory.context(user=world.alice.pk, reason="screening date typo"):
        patient.screening_date -= timedelta(days=1)
        patient.save()
    event = patient.events.order_by("pgh_id").last()
    assert event.pgh_context == {"user": world.alice.pk, "reason": "screening date typo"}
    assert pghistory.models.Context.objects.count() == 0


def test_setup_refuses_one_role_for_both_and_a_superuser(roles):
    with pytest.raises(CommandError, match="two different roles"):
        call_command("setup_db_roles", owner=roles.app, app=roles.app)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        me = cursor.fetchone()[0]
    with pytest.raises(CommandError, match="the role running this command"):
        call_command("setup_db_roles", owner=roles.owner, app=me)


@committed
def test_setup_is_idempotent(roles, as_app):
    with mock.patch.dict("os.environ", {"DB_APP_PASSWORD": roles.password}):
        out = StringIO()
        call_command("setup_db_roles", owner=roles.owner, app=roles.app, stdout=out)
    assert f"{roles.app} runs the application" in out.getvalue()
    assert _privileges(as_app, roles.app, "pghistory_context") == {"SELECT", "INSERT"}
    with roles.connect(roles.app) as again:  # the password still holds
        assert again.execute("SELECT current_user").fetchone() == (roles.app,)


@committed
def test_services_and_logins_run_as_the_application_role(world, roles, client):
    from django.urls import reverse
    from django.utils import timezone

    from ecrf.audit.models import AuthEvent
    from ecrf.patients.services import patient_create
    from tests.factories import PASSWORD

    saved = {key: connection.settings_dict[key] for key in ("USER", "PASSWORD")}
    connection.close()
    connection.settings_dict.update(USER=roles.app, PASSWORD=roles.password)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone() == (roles.app,)
        patient = patient_create(
            study=world.rct, site=world.bxp, by=world.alice, screening_date=timezone.localdate()
        )
        response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
        assert response.status_code == 302
        assert AuthEvent.objects.filter(kind="login", username="alice").count() == 1
        (event,) = patient.events.all()
        assert event.pgh_context["reason"] == "patient screened"
    finally:
        connection.close()
        connection.settings_dict.update(saved)
