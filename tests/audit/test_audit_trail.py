"""The audit trail: a row for every kind of write, in the same transaction, never rewritable."""

from __future__ import annotations

from datetime import timedelta

import pghistory
import pytest
from django.apps import apps
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from ecrf.accounts.models import Membership, Role
from ecrf.audit.models import AuthEvent
from ecrf.audit.triggers import audit_tables
from ecrf.patients.models import Patient
from ecrf.patients.services import patient_create
from tests.factories import PASSWORD, AllocationFactory

pytestmark = pytest.mark.django_db


def patient_events(patient):
    return list(
        pghistory.models.Events.objects.tracks(patient).order_by("pgh_created_at", "pgh_id")
    )


def test_patient_creation_is_audited_with_user_and_reason(world):
    patient = patient_create(
        study=world.rct, site=world.bxp, by=world.alice, screening_date=timezone.localdate()
    )
    (event,) = patient_events(patient)
    assert event.pgh_label == "insert"
    assert event.pgh_data["subject_code"] == patient.subject_code
    assert event.pgh_context["reason"] == "patient screened"
    assert event.pgh_created_at.utcoffset().total_seconds() == 0  # stored as a UTC instant


def test_update_records_field_level_old_and_new_values_and_reason(world):
    patient = world.bxp_patients[0]
    with pghistory.context(user=world.alice.pk, reason="status corrected after source check"):
        patient.status = Patient.Status.WITHDRAWN
        patient.save()
    update = patient_events(patient)[-1]
    assert update.pgh_label == "update"
    assert update.pgh_diff == {"status": ["screening", "withdrawn"]}
    assert update.pgh_context["user"] == world.alice.pk
    assert update.pgh_context["reason"] == "status corrected after source check"


def test_delete_is_audited_with_the_last_values(world):
    patient = world.str_patients[0]
    pk, code = patient.pk, patient.subject_code
    with pghistory.context(reason="created in error"):
        patient.delete()
    events = pghistory.models.Events.objects.filter(pgh_obj_model="patients.Patient")
    delete = [e for e in events.across("patients.PatientEvent") if e.pgh_obj_id == str(pk)][-1]
    assert delete.pgh_label == "delete"
    assert delete.pgh_data["subject_code"] == code


def test_membership_and_role_changes_are_audited(world):
    membership = Membership.objects.get(user=world.bob)
    with pghistory.context(reason="promoted to investigator"):
        membership.role = Role.INVESTIGATOR
        membership.save()
    events = list(pghistory.models.Events.objects.tracks(membership).order_by("pgh_id"))
    assert [e.pgh_label for e in events] == ["insert", "update"]
    assert events[-1].pgh_diff == {"role": ["coordinator", "investigator"]}


def test_rolled_back_write_leaves_no_audit_row(world):
    patient = world.bxp_patients[0]
    before = len(patient_events(patient))
    with pytest.raises(IntegrityError), transaction.atomic():
        patient.status = Patient.Status.ENROLLED
        patient.save()
        Patient.objects.create(  # duplicate subject code: the whole transaction fails
            study=patient.study,
            site=patient.site,
            protocol_version=patient.protocol_version,
            subject_code=patient.subject_code,
            screening_date=patient.screening_date,
            created_by=world.alice,
        )
    assert len(patient_events(patient)) == before
    patient.refresh_from_db()
    assert patient.status == Patient.Status.SCREENING


def test_login_logout_and_failed_login_are_recorded(client, world):
    url = reverse("login")
    client.post(url, {"username": "alice", "password": "wrong password"})
    client.post(url, {"username": "nobody", "password": "whatever"})
    client.post(url, {"username": "alice", "password": PASSWORD})
    client.post(reverse("logout"))
    events = list(AuthEvent.objects.order_by("id").values_list("kind", "username", "user_id"))
    assert events == [
        ("login_failed", "alice", world.alice.pk),
        ("login_failed", "nobody", None),
        ("login", "alice", world.alice.pk),
        ("logout", "alice", world.alice.pk),
    ]


def test_every_audit_table_has_the_append_only_trigger():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = 'ecrf_audit_append_only'"
        )
        protected = {row[0] for row in cursor.fetchall()}
    assert set(audit_tables()) <= protected
    assert {"patients_patientevent", "accounts_membershipevent", "audit_authevent"} <= protected


@pytest.mark.parametrize("statement", ["UPDATE {table} SET pgh_label = 'x'", "DELETE FROM {table}"])
def test_database_refuses_update_and_delete_of_audit_rows(world, statement):
    table = "patients_patientevent"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        count = cursor.fetchone()[0]
    assert count >= 7
    with (
        pytest.raises((InternalError, ProgrammingError)) as excinfo,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement.format(table=table))
    assert "audit rows are append-only" in str(excinfo.value)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), count(*) FILTER (WHERE pgh_label = 'x') FROM {table}")
        assert cursor.fetchone() == (count, 0)


def test_pgtrigger_ignore_cannot_bypass_the_protection(world):
    import pgtrigger

    event_model = apps.get_model("patients", "PatientEvent")
    with (
        pytest.raises((InternalError, ProgrammingError)),
        transaction.atomic(),
        pgtrigger.ignore(),
    ):
        event_model.objects.all().delete()
    assert event_model.objects.count() >= 7


def test_account_events_cannot_be_deleted(client, world):
    client.post(reverse("login"), {"username": "alice", "password": "nope"})
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        AuthEvent.objects.all().delete()
    assert AuthEvent.objects.count() == 1


class TestPatientAuditPage:
    def _change(self, world):
        patient = world.bxp_patients[0]
        with pghistory.context(user=world.alice.pk, reason="screening date typo"):
            # The day before: on the 1st of a month, replace(day=1) changed nothing.
            patient.screening_date -= timedelta(days=1)
            patient.save()
        return patient

    def test_monitor_sees_old_new_values_and_reason(self, client, world):
        patient = self._change(world)
        client.force_login(world.monica)
        response = client.get(
            reverse("patients:audit", args=[world.rct.code, patient.subject_code])
        )
        assert response.status_code == 200
        entries = response.context["entries"]
        update = [e for e in entries if e.reason == "screening date typo"][0]
        assert update.user == str(world.alice)
        (change,) = update.changes
        assert change.field == "screening_date"
        # In the reader's format (French by default), no longer the stored ISO text.
        assert change.new == patient.screening_date.strftime("%d/%m/%Y")
        assert "screening date typo" in response.content.decode()

    def test_data_manager_may_read_investigator_may_not(self, client, world):
        patient = self._change(world)
        url = reverse("patients:audit", args=[world.rct.code, patient.subject_code])
        client.force_login(world.diane)
        assert client.get(url).status_code == 200
        client.force_login(world.alice)
        assert client.get(url).status_code == 403

    def test_blinded_reader_never_sees_the_arm(self, client, world):
        patient = world.bxp_patients[0]
        AllocationFactory(patient=patient, arm="IMA", allocated_by=world.alice)
        client.force_login(world.monica)
        url = reverse("patients:audit", args=[world.rct.code, patient.subject_code])
        response = client.get(url, headers={"accept-language": "en"})
        allocation = [e for e in response.context["entries"] if e.model == "allocation"][0]
        arm = [c for c in allocation.changes if c.field == "arm"][0]
        assert str(arm.new) == "(blinded)"
        french = client.get(url, headers={"accept-language": "fr"}).content.decode()
        assert "(en aveugle)" in french
        assert "IMA" not in french
        assert "IMA" not in response.content.decode()
        assert allocation.changes  # the kit number is still shown
        kit = [c for c in allocation.changes if c.field == "kit_number"][0]
        assert kit.new.startswith("K-")


def test_reason_of_one_write_does_not_stick_to_the_next(world):
    from ecrf.audit.context import audited

    patient = world.bxp_patients[0]
    with pghistory.context(url="/some/request/"):
        with audited(by=world.alice, reason="first change"):
            patient.status = Patient.Status.ENROLLED
            patient.save()
        patient.status = Patient.Status.COMPLETED
        patient.save()
    first, second = patient_events(patient)[-2:]
    assert first.pgh_context == {
        "url": "/some/request/",
        "user": world.alice.pk,
        "reason": "first change",
    }
    assert second.pgh_context == {"url": "/some/request/"}


def test_audit_page_names_related_rows_and_choices(client, world):
    patient = world.bxp_patients[0]
    client.force_login(world.diane)
    url = reverse("patients:audit", args=[world.rct.code, patient.subject_code])
    response = client.get(url, headers={"accept-language": "en"})
    created = response.context["entries"][0]
    values = {change.field: change.new for change in created.changes}
    assert values["site"] == str(world.bxp)
    assert values["created_by"] == str(world.alice)
    assert values["status"] == "Screening"
    assert "day0_date" not in values  # empty at creation
    assert created.object_id == patient.subject_code


def test_write_after_an_audited_block_in_the_same_transaction_has_no_stale_reason(world):
    from ecrf.audit.context import audited

    patient = world.bxp_patients[0]
    with transaction.atomic():
        with audited(by=world.alice, reason="enrolled"):
            patient.status = Patient.Status.ENROLLED
            patient.save()
        patient.status = Patient.Status.COMPLETED
        patient.save()
    first, second = patient_events(patient)[-2:]
    assert first.pgh_context["reason"] == "enrolled"
    assert second.pgh_context is None
