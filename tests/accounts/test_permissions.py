"""The permission table, walked: every role × every action, through the services themselves.

For each write service a scenario prepares what the service needs (a consented patient, a
serious event, an allocation list...), then every persona calls the service directly, not
through a view: the five roles at Bordeaux (BXP), Charlie (investigator at another site)
and René (investigator in another study). Where the table allows the role, the call
succeeds and writes (undone afterwards, so every persona starts from the same state);
where it does not, the call is refused with PermissionDenied and no table changed: row
counts and audit events alike.

Every membership of the trial is unblinded here, so that blinding (a separate check, the
`unblinded` flag) never hides what the table says; `test_blinding_stays_a_separate_check`
shows it on its own.
"""

from __future__ import annotations

import inspect
import pkgutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from importlib import import_module
from types import MappingProxyType

import pytest
from axes.models import AccessAttempt
from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone, translation

import ecrf
from ecrf.accounts import permissions
from ecrf.accounts.access import can_see_allocation
from ecrf.accounts.models import Membership, Role
from ecrf.accounts.permissions import (
    PERMISSIONS,
    PLANNED,
    Action,
    actions_for,
    can,
    require,
    roles_allowed,
)
from ecrf.accounts.services import (
    account_unlock,
    membership_deactivate,
    membership_role_change,
    user_invite,
)
from ecrf.crfs.enrolment import patient_enrol, patient_screen_fail
from ecrf.crfs.services import crf_save
from ecrf.exports.jobs import export_download, export_storage
from ecrf.exports.models import ExportJob, ExportRecord
from ecrf.exports.services import export_require, export_run
from ecrf.patients.models import FormIndexEntry, Patient, Visit
from ecrf.patients.randomisation import (
    allocation_list_generate,
    allocation_list_import,
    allocation_take,
    can_manage_allocation_lists,
)
from ecrf.patients.services import patient_create, patient_end, patient_plan_inclusion
from ecrf.patients.unblinding import emergency_unblind
from ecrf.patients.visits import (
    visit_add_unscheduled,
    visit_mark_missed,
    visit_record_date,
    visits_schedule_from_day0,
)
from ecrf.reminders.models import Kind, Reminder
from ecrf.review.locks import data_freeze, data_lock, data_unlock
from ecrf.review.models import Query
from ecrf.review.queries import (
    query_answer,
    query_close,
    query_correct,
    query_raise,
    query_reopen,
)
from ecrf.review.sdv import sdv_mark, sdv_mark_visit
from ecrf.review.signatures import casebook_sign, visit_sign
from ecrf.review.study_unblinding import study_unblind
from ecrf.safety.models import LabAlert, SaeReport
from ecrf.safety.services import (
    ae_authority_reported,
    ae_create,
    ae_update,
    lab_alert_dismiss,
    sae_acknowledge,
    sae_follow_up,
    sae_submit_initial,
)
from tests.factories import PASSWORD, MembershipFactory, UserFactory
from tests.reminders.conftest import enrol, paris, sweep
from tests.safety.conftest import CONSENT_DAY, DAY0, ae_values, consent, sae_values
from tests.walks.helpers import rct_pre_inclusion, screen

pytestmark = pytest.mark.django_db

ROLE_PERSONAS = {
    Role.INVESTIGATOR: "alice",
    Role.COORDINATOR: "bob",
    Role.MONITOR: "monica",
    Role.DATA_MANAGER: "diane",
    Role.ADMIN: "adele",
}
# Members of the trial at another site, and of another study only: refused everything.
OUTSIDERS = ("charlie", "rene")
# Reads, checked against the read path (scoping, the audit page and the reminders log),
# not a service.
READS = {Action.VIEW, Action.READ_AUDIT, Action.READ_REMINDER_LOG}
# Who the reminder sweep writes to: checked against the sweep's recipients, not a service
# (nobody calls it on anyone's behalf: beat runs it).
RECEIVED = {Action.RECEIVE_REMINDERS}
# Functions that take `by` and write, but only as steps of a service that has asked the
# table already (never called by a view, a task or a command on their own).
STEPS = {
    "visit_refresh_status": "crf_save, after the form is saved",
    "visits_close_remaining": "patient_end, patient_screen_fail, a fatal adverse event",
    "lab_alerts_refresh": "crf_save of the safety_labs form",
    "patient_record_death": "ae_create and ae_update of a fatal adverse event",
    "safety_labs_saved": "crf_save of the safety_labs form, through the crf_saved signal",
    "audited": "the audit context every service opens, not a write itself",
    "query_create": "query_raise, and the automatic rules (the system raises, nobody's act)",
    "export_prepare": "export_run, and the export screen before export_job_create: it asks "
    "the table (export_require) and writes nothing",
    # Not a site's data: the operator loads a protocol file from the command line.
    "load_protocol": "manage.py load_protocol, the study's configuration",
    # Not a site's data: an account's second factor, reset by an administrator of one of the
    # person's studies or a superuser (tests/accounts/test_two_factor.py walks who may).
    "two_factor_reset": "an account's two-factor devices after a lost phone",
    # Not a site's data: an account's own API token, revoked by its owner or a superuser
    # (tests/api/test_tokens.py walks who may).
    "token_revoke": "an account's own API token",
}


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _exports_in_tmp(settings, tmp_path):
    """The export zips the scenarios write, in the test's own folder."""
    exports = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    exports["OPTIONS"] = {"location": str(tmp_path / "exports")}
    settings.STORAGES = {**settings.STORAGES, "exports": exports}


@pytest.fixture
def people(world) -> dict:
    """The personas by name, with Adele, administrator of the trial; all unblinded."""
    adele = UserFactory(username="adele")
    MembershipFactory(user=adele, study=world.rct, site=None, role=Role.ADMIN)
    Membership.objects.filter(study=world.rct).update(unblinded=True)
    names = [*ROLE_PERSONAS.values(), *OUTSIDERS]
    return {name: adele if name == "adele" else getattr(world, name) for name in names}


def fresh(obj):
    """The object re-read: an allowed attempt is undone in the database, not in memory."""
    return type(obj).objects.get(pk=obj.pk)


# -- what the database holds -------------------------------------------------------------------


def _tables() -> list[str]:
    ours = {
        "accounts",
        "studies",
        "patients",
        "crfs",
        "safety",
        "review",
        "exports",
        "notifications",
        "audit",
    }
    tables = {
        model._meta.db_table
        for model in apps.get_models()
        if model._meta.app_label in ours and model._meta.managed and not model._meta.proxy
    }
    # Audit events are rows of the *Event tables above; their contexts live here.
    tables.add(apps.get_model("pghistory", "Context")._meta.db_table)
    return sorted(tables)


def fingerprint() -> dict[str, int]:
    """Rows per table of the project's apps, audit events and contexts included (one query)."""
    tables = _tables()
    quote = connection.ops.quote_name
    counts = ", ".join(f"(SELECT count(*) FROM {quote(table)})" for table in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        return dict(zip(tables, cursor.fetchone(), strict=True))


class _Undo(Exception):
    pass


def attempt(call: Callable[[], object]) -> tuple[str, dict[str, int]]:
    """Run a call and roll it back: ("done" or "refused" or the error, rows written per table).

    Undone whatever happens, so every persona starts from the same state and a call that
    should have been refused does not leak into the next one.
    """
    before = fingerprint()
    outcome, written = "done", {}
    try:
        with transaction.atomic():
            try:
                call()
            except PermissionDenied:
                outcome = "refused"
            except Exception as exc:  # noqa: BLE001 - reported with the persona's name
                outcome = f"{type(exc).__name__}: {exc}"
            after = fingerprint()
            written = {t: after[t] - before[t] for t in after if after[t] != before[t]}
            raise _Undo
    except _Undo:
        pass
    assert fingerprint() == before
    return outcome, written


# -- one scenario per write service -------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    action: Action
    # setup(world, people, client) -> state; attempt(state, by) calls the service once.
    setup: Callable
    attempt: Callable


def _screened(world, people, client):
    return patient_create(
        study=world.rct, site=world.bxp, by=world.alice, screening_date=CONSENT_DAY
    )


def _own_exports(world, people, client):
    """An export of BXP for each persona, asked for by them (the rows are the test's, the
    zip written by Adele, the trial's administrator): the table decides before whose
    export it is."""
    zip_name = export_storage().save("scenario.zip", ContentFile(b"zip"))
    jobs = {}
    for person in people.values():
        record = ExportRecord.objects.create(
            by=people["adele"],
            at=timezone.now(),
            study=world.rct,
            formats=["csv"],
            sites=["BXP"],
            manifest_sha256="0" * 64,
        )
        jobs[person.pk] = ExportJob.objects.create(
            by=person,
            requested_at=timezone.now(),
            study=world.rct,
            sites=["BXP"],
            formats=["csv"],
            status=ExportJob.Status.DONE,
            record=record,
            file_name=zip_name,
            size=3,
            sha256="0" * 64,
            expires_at=timezone.now() + timedelta(days=1),
        )
    return jobs


def _download_own_export(jobs, by):
    export_download(job=jobs[by.pk], by=by).close()


def _consented(world, people, client):
    return consent(_screened(world, people, client), by=world.alice)


def _enrolled(world, people, client):
    patient = _consented(world, people, client)
    Patient.objects.filter(pk=patient.pk).update(status=Patient.Status.ENROLLED, day0_date=DAY0)
    patient = fresh(patient)
    visits_schedule_from_day0(patient=patient)
    return patient


def _bxp_list(world, people, client):
    return allocation_list_generate(
        study=world.rct, site=world.bxp, size=4, seed=3, by=people["diane"]
    )


def _eligible(world, people, client):
    """Screened and found eligible through the screens, with a list to randomise into."""
    _bxp_list(world, people, client)
    client.force_login(world.alice)
    day0 = timezone.localdate() - timedelta(days=2)
    patient = screen(client, world.rct, site="BXP", screening_date=day0 - timedelta(days=10))
    rct_pre_inclusion(client, patient, day0 - timedelta(days=10))
    return patient, day0


def _pre_included(world, people, client):
    """Screened with the pre-inclusion visit complete (every form entered): signable."""
    client.force_login(world.alice)
    day = timezone.localdate() - timedelta(days=12)
    patient = screen(client, world.rct, site="BXP", screening_date=day)
    rct_pre_inclusion(client, patient, day)
    return fresh(patient)


def _randomised(world, people, client):
    _bxp_list(world, people, client)
    patient = _screened(world, people, client)
    allocation_take(patient=patient, by=world.alice)
    return patient


def _event(world, people, client):
    return ae_create(patient=_consented(world, people, client), by=world.alice, values=ae_values())


def _serious(world, people, client, **changes):
    patient = _consented(world, people, client)
    return ae_create(patient=patient, by=world.alice, values=sae_values(**changes))


def _submitted(world, people, client, **changes):
    event = _serious(world, people, client, **changes)
    sae_submit_initial(report=event.sae_reports.get(), by=world.alice, password=PASSWORD)
    return event


def _acknowledged_susar(world, people, client):
    event = _submitted(world, people, client, relatedness="definite", expected=False)
    sae_acknowledge(report=event.sae_reports.get(), by=world.diane)
    return fresh(event)


def _lab_prompt(world, people, client):
    patient = _consented(world, people, client)
    labs = {
        "sample_date": CONSENT_DAY,
        "neutrophils_x10e9_l": Decimal("0.8"),  # below the protocol's alert at 1.0
    }
    crf_save(
        visit=patient.visits.get(code="SCR"),
        form_code="safety_labs",
        values=labs,
        by=world.alice,
        expected_version=0,
    )
    return LabAlert.objects.get(patient=patient, status=LabAlert.Status.OPEN)


def _first_follow_up_visit(patient) -> Visit:
    protocol = patient.protocol_version.protocol
    code = next(
        v.code for v in protocol.visits if v.kind == "scheduled" and (v.target_day or 0) > 0
    )
    return patient.visits.get(code=code)


def _casebook_locked(world, people, client):
    return data_lock(
        by=world.diane, patient=_screened(world, people, client), reason="Database lock of BXP"
    )


def _query(world, people, client):
    """A query of Monica's on the consent version of a consented Bordeaux patient."""
    patient = _consented(world, people, client)
    entry = FormIndexEntry.objects.get(patient=patient, form_code="consent")
    return query_raise(
        by=world.monica, entry=entry, field="consent_version", text="Version 2.1 or 2.2?"
    )


def _answered(world, people, client):
    return query_answer(by=world.alice, query=_query(world, people, client), text="Version 2.1.")


def _locked_member(world, people, client):
    """Lucie, investigator at Bordeaux, locked out by five wrong passwords."""
    lucie = UserFactory(username="lucie")
    MembershipFactory(user=lucie, study=world.rct, site=world.bxp, role=Role.INVESTIGATOR)
    AccessAttempt.objects.create(
        username="lucie",
        user_agent="test",
        get_data="",
        post_data="",
        http_accept="",
        path_info="/accounts/login/",
        failures_since_start=5,
    )
    return lucie


IMPORT_ROWS = [
    {"sequence": "1", "block_number": "1", "block_size": "2", "arm": "PBO", "kit_number": "KIT-W1"},
    {"sequence": "2", "block_number": "1", "block_size": "2", "arm": "IMA", "kit_number": "KIT-W2"},
]


def _member(world, people, client):
    """A Bordeaux investigator, for the administrators to change or withdraw."""
    user = UserFactory(username="ines")
    return MembershipFactory(user=user, study=world.rct, site=world.bxp, role=Role.INVESTIGATOR)


SCENARIOS = {
    # People: a study's administrators invite, change roles and withdraw access.
    "user_invite": Scenario(
        Action.MANAGE_USERS,
        lambda world, people, client: None,
        lambda state, by, world: user_invite(
            by=by,
            study=world.rct,
            email="new.investigator@example.org",
            role=Role.INVESTIGATOR,
            sites=[world.bxp],
            reason="New sub-investigator at Bordeaux",
        ),
    ),
    "membership_role_change": Scenario(
        Action.MANAGE_USERS,
        _member,
        lambda membership, by, world: membership_role_change(
            by=by,
            membership=fresh(membership),
            role=Role.COORDINATOR,
            reason="Now coordinates the site",
        ),
    ),
    "membership_deactivate": Scenario(
        Action.MANAGE_USERS,
        _member,
        lambda membership, by, world: membership_deactivate(
            by=by, membership=fresh(membership), reason="Left the Bordeaux team"
        ),
    ),
    "patient_create": Scenario(
        Action.ENROL,
        lambda world, people, client: None,
        lambda state, by, world: patient_create(
            study=world.rct, site=world.bxp, by=by, screening_date=CONSENT_DAY
        ),
    ),
    "patient_enrol": Scenario(
        Action.ENROL,
        _eligible,
        lambda state, by, world: patient_enrol(patient=fresh(state[0]), by=by, day0_date=state[1]),
    ),
    "patient_screen_fail": Scenario(
        Action.ENROL,
        _screened,
        lambda patient, by, world: patient_screen_fail(
            patient=fresh(patient), by=by, reasons="mRSS below the inclusion threshold"
        ),
    ),
    "patient_end": Scenario(
        Action.ENROL,
        _enrolled,
        lambda patient, by, world: patient_end(
            patient=fresh(patient),
            by=by,
            status=Patient.Status.WITHDRAWN,
            end_date=DAY0 + timedelta(days=20),
            reason="Consent withdrawn by the patient",
        ),
    ),
    "patient_plan_inclusion": Scenario(
        Action.ENROL,
        _screened,
        lambda patient, by, world: patient_plan_inclusion(
            patient=fresh(patient), by=by, planned_date=CONSENT_DAY + timedelta(days=7)
        ),
    ),
    "visit_record_date": Scenario(
        Action.ENTER,
        _screened,
        lambda patient, by, world: visit_record_date(
            visit=patient.visits.get(code="SCR"), by=by, visit_date=CONSENT_DAY
        ),
    ),
    "visit_mark_missed": Scenario(
        Action.ENTER,
        _enrolled,
        lambda patient, by, world: visit_mark_missed(
            visit=_first_follow_up_visit(patient), by=by, reason="The patient was in hospital"
        ),
    ),
    "visit_add_unscheduled": Scenario(
        Action.ENTER,
        _enrolled,
        lambda patient, by, world: visit_add_unscheduled(patient=fresh(patient), by=by),
    ),
    "crf_save (first entry)": Scenario(
        Action.ENTER,
        _consented,
        lambda patient, by, world: crf_save(
            visit=patient.visits.get(code="SCR"),
            form_code="demographics",
            values={"birth_year": 1968, "sex": "F", "childbearing_potential": False},
            by=by,
            expected_version=0,
        ),
    ),
    "crf_save (correction)": Scenario(
        Action.CORRECT,
        _consented,
        lambda patient, by, world: crf_save(
            visit=patient.visits.get(code="SCR"),
            form_code="consent",
            values={"consent_version": "2.2"},
            by=by,
            expected_version=1,
            reason="Version misread on the signed form",
        ),
    ),
    "allocation_take": Scenario(
        Action.RANDOMISE,
        lambda world, people, client: (
            _bxp_list(world, people, client),
            _screened(world, people, client),
        )[1],
        lambda patient, by, world: allocation_take(patient=fresh(patient), by=by),
    ),
    "emergency_unblind": Scenario(
        Action.UNBLIND,
        _randomised,
        lambda patient, by, world: emergency_unblind(
            patient=fresh(patient),
            by=by,
            reason="Anaphylaxis: treatment decision",
            password=PASSWORD,
        ),
    ),
    "allocation_list_generate": Scenario(
        Action.MANAGE_ALLOCATION_LISTS,
        lambda world, people, client: None,
        lambda state, by, world: allocation_list_generate(
            study=world.rct, site=world.bxp, size=4, seed=11, by=by
        ),
    ),
    "allocation_list_import": Scenario(
        Action.MANAGE_ALLOCATION_LISTS,
        lambda world, people, client: None,
        lambda state, by, world: allocation_list_import(
            study=world.rct, site=world.bxp, rows=IMPORT_ROWS, by=by
        ),
    ),
    "ae_create": Scenario(
        Action.RECORD_AE,
        _consented,
        lambda patient, by, world: ae_create(patient=fresh(patient), by=by, values=ae_values()),
    ),
    "ae_update": Scenario(
        Action.RECORD_AE,
        _event,
        lambda event, by, world: ae_update(
            event=fresh(event),
            by=by,
            values=ae_values(ctcae_grade=2),
            expected_version=event.version,
            reason="Grade reassessed at the visit",
        ),
    ),
    "lab_alert_dismiss": Scenario(
        Action.RECORD_AE,
        _lab_prompt,
        lambda alert, by, world: lab_alert_dismiss(
            alert=fresh(alert), by=by, reason="Known benign ethnic neutropenia"
        ),
    ),
    "sae_submit_initial": Scenario(
        Action.SUBMIT_SAE,
        _serious,
        lambda event, by, world: sae_submit_initial(
            report=SaeReport.objects.get(adverse_event=event), by=by, password=PASSWORD
        ),
    ),
    "sae_follow_up": Scenario(
        Action.SUBMIT_SAE,
        _submitted,
        lambda event, by, world: sae_follow_up(
            event=fresh(event), by=by, password=PASSWORD, narrative="Discharged on day 5."
        ),
    ),
    "sae_acknowledge": Scenario(
        Action.ACKNOWLEDGE_SAE,
        _submitted,
        lambda event, by, world: sae_acknowledge(
            report=SaeReport.objects.get(adverse_event=event), by=by
        ),
    ),
    "account_unlock": Scenario(
        Action.UNLOCK_ACCOUNT,
        _locked_member,
        lambda user, by, world: account_unlock(
            user=user, by=by, reason="Called back on the ward phone"
        ),
    ),
    "export_run": Scenario(
        Action.EXPORT,
        _consented,
        lambda patient, by, world: export_run(
            study=world.rct, by=by, sites=["BXP"], out_dir=tempfile.mkdtemp()
        ),
    ),
    "export_download": Scenario(
        Action.EXPORT,
        _own_exports,
        lambda jobs, by, world: _download_own_export(jobs, by),
    ),
    "data_freeze": Scenario(
        Action.FREEZE,
        _consented,
        lambda patient, by, world: data_freeze(
            by=by, patient=fresh(patient), reason="Interim analysis cut-off"
        ),
    ),
    "data_lock": Scenario(
        Action.LOCK,
        _consented,
        lambda patient, by, world: data_lock(
            by=by, visit=patient.visits.get(code="SCR"), reason="Interim analysis cut-off"
        ),
    ),
    # The database lock: the action at every site of the study.
    "data_lock (study)": Scenario(
        Action.LOCK,
        lambda world, people, client: None,
        lambda state, by, world: data_lock(by=by, study=world.rct, reason="Final database lock"),
    ),
    # The whole study's unblinding, after the database lock.
    "study_unblind": Scenario(
        Action.UNBLIND_STUDY,
        lambda world, people, client: data_lock(
            by=world.diane, study=world.rct, reason="Final database lock"
        ),
        lambda lock, by, world: study_unblind(
            study=fresh(world.rct),
            by=by,
            password=PASSWORD,
            reason="Final analysis after the database lock",
        ),
    ),
    "data_unlock": Scenario(
        Action.UNLOCK,
        _casebook_locked,
        lambda lock, by, world: data_unlock(
            by=by, lock=fresh(lock), reason="Late laboratory results to enter"
        ),
    ),
    "ae_authority_reported": Scenario(
        Action.ACKNOWLEDGE_SAE,
        _acknowledged_susar,
        lambda event, by, world: ae_authority_reported(
            event=fresh(event), by=by, at=timezone.now()
        ),
    ),
    # The consent is in the SDV plan for every patient, so no sample decides the outcome.
    "sdv_mark": Scenario(
        Action.SDV,
        _consented,
        lambda patient, by, world: sdv_mark(
            by=by,
            entry=FormIndexEntry.objects.get(patient=patient, form_code="consent"),
            expected_version=1,
        ),
    ),
    "visit_sign": Scenario(
        Action.SIGN,
        _pre_included,
        lambda patient, by, world: visit_sign(
            by=by, visit=patient.visits.get(code="SCR"), password=PASSWORD
        ),
    ),
    "casebook_sign": Scenario(
        Action.SIGN,
        _pre_included,
        lambda patient, by, world: casebook_sign(by=by, patient=fresh(patient), password=PASSWORD),
    ),
    "sdv_mark_visit": Scenario(
        Action.SDV,
        _consented,
        lambda patient, by, world: sdv_mark_visit(by=by, visit=patient.visits.get(code="SCR")),
    ),
    # Queries: a monitor raises and closes but writes no data; the site answers and
    # corrects, and cannot close.
    "query_raise": Scenario(
        Action.RAISE_QUERY,
        _consented,
        lambda patient, by, world: query_raise(
            by=by,
            entry=FormIndexEntry.objects.get(patient=patient, form_code="consent"),
            text="Please check the consent date.",
        ),
    ),
    "query_answer": Scenario(
        Action.ANSWER_QUERY,
        _query,
        lambda query, by, world: query_answer(by=by, query=fresh(query), text="Version 2.1."),
    ),
    "query_correct": Scenario(
        Action.ANSWER_QUERY,
        _query,
        lambda query, by, world: query_correct(
            by=by, query=fresh(query), values={"consent_version": "2.2"}, expected_version=1
        ),
    ),
    "query_close": Scenario(
        Action.CLOSE_QUERY,
        _answered,
        lambda query, by, world: query_close(
            by=by, query=Query.objects.get(pk=query.pk), text="Agreed with the source."
        ),
    ),
    "query_reopen": Scenario(
        Action.CLOSE_QUERY,
        _answered,
        lambda query, by, world: query_reopen(
            by=by, query=Query.objects.get(pk=query.pk), text="The source says 2.2, check it."
        ),
    ),
}


@pytest.mark.parametrize("service", list(SCENARIOS))
def test_every_role_may_call_the_service_exactly_as_the_table_says(world, people, client, service):
    scenario = SCENARIOS[service]
    state = scenario.setup(world, people, client)
    personas = [(name, role) for role, name in ROLE_PERSONAS.items()]
    personas += [(name, "another site or study") for name in OUTSIDERS]
    wrong = []
    for name, role in personas:
        allowed = role in PERMISSIONS[scenario.action]
        outcome, written = attempt(lambda by=people[name]: scenario.attempt(state, by, world))
        if allowed and (outcome != "done" or not written):
            wrong.append(f"{name} ({role}) may {scenario.action}: {outcome}, wrote {written}")
        if not allowed and (outcome != "refused" or written):
            wrong.append(f"{name} ({role}) may not {scenario.action}: {outcome}, wrote {written}")
    assert wrong == []


def test_a_refusal_names_the_action_and_who_may_take_it(world, people):
    patient = _consented(world, people, None)
    with translation.override("en"), pytest.raises(PermissionDenied) as refused:
        ae_create(patient=patient, by=world.monica, values=ae_values())
    assert str(refused.value) == (
        "Your role does not allow you to record adverse events here "
        "(investigator, coordinator only)."
    )


# -- the reads ----------------------------------------------------------------------------------


def test_view_is_what_the_scoping_lets_each_persona_read(world, people):
    patient = world.bxp_patients[0]
    for role, name in ROLE_PERSONAS.items():
        visible = Patient.objects.visible_to(people[name]).filter(pk=patient.pk).exists()
        assert visible == (role in PERMISSIONS[Action.VIEW]), name
        assert can(people[name], Action.VIEW, patient=patient) == visible, name
    for name in OUTSIDERS:
        assert not Patient.objects.visible_to(people[name]).filter(pk=patient.pk).exists()
        assert not can(people[name], Action.VIEW, patient=patient)


def test_the_audit_page_opens_for_the_roles_the_table_names(client, world, people):
    patient = world.bxp_patients[0]
    url = reverse("patients:audit", args=[world.rct.code, patient.subject_code])
    for role, name in ROLE_PERSONAS.items():
        client.force_login(people[name])
        expected = 200 if role in PERMISSIONS[Action.READ_AUDIT] else 403
        assert client.get(url).status_code == expected, name
    for name in OUTSIDERS:
        client.force_login(people[name])
        assert client.get(url).status_code == 404, name


def test_the_reminders_log_opens_for_the_roles_the_table_names(client, world, people):
    url = reverse("reminders:log", args=[world.rct.code])
    for role, name in ROLE_PERSONAS.items():
        client.force_login(people[name])
        expected = 200 if role in PERMISSIONS[Action.READ_REMINDER_LOG] else 403
        assert client.get(url).status_code == expected, name
    # The log is the study's: an investigator of another site is refused it, a member of
    # another study does not find the study at all.
    client.force_login(people["charlie"])
    assert client.get(url).status_code == 403
    client.force_login(people["rene"])
    assert client.get(url).status_code == 404


# -- the reminders' recipients ------------------------------------------------------------------

# The trial patient included on 4 January 2027: M1's window opens in 7 days on 20 January.
REMINDED_AT = paris(date(2027, 1, 20))


def _reminded(world) -> set[str]:
    """Who the sweep reminds of a Bordeaux visit, by username."""
    patient = enrol(world.bxp_patients[0])
    sweep(REMINDED_AT)
    return set(
        Reminder.objects.filter(patient=patient, kind=Kind.WINDOW_OPENS).values_list(
            "recipient__username", flat=True
        )
    )


def test_the_sweep_reminds_exactly_the_roles_the_table_lets_receive_reminders(world, people):
    reminded = _reminded(world)
    patient = world.bxp_patients[0]
    for role, name in ROLE_PERSONAS.items():
        allowed = role in PERMISSIONS[Action.RECEIVE_REMINDERS]
        assert (name in reminded) == allowed, name
        assert can(people[name], Action.RECEIVE_REMINDERS, patient=patient) == allowed, name
    assert reminded.isdisjoint(OUTSIDERS)
    assert reminded == {"alice", "bob"}


@pytest.mark.parametrize("role", list(ROLE_PERSONAS))
def test_the_sweep_follows_the_table_not_a_role_list_of_its_own(world, people, monkeypatch, role):
    """Give the action to one role only: the sweep reminds that role's persona and nobody
    else, whether the role works at a site (investigators, coordinators, monitors) or at
    all of them (data managers, administrators)."""
    table = {**PERMISSIONS, Action.RECEIVE_REMINDERS: frozenset({role})}
    monkeypatch.setattr(permissions, "PERMISSIONS", MappingProxyType(table))
    assert roles_allowed(Action.RECEIVE_REMINDERS) == {role}
    assert _reminded(world) == {ROLE_PERSONAS[role]}


# -- the table itself ---------------------------------------------------------------------------


def test_the_table_has_a_row_for_every_action_and_each_row_is_walked_or_planned():
    assert set(PERMISSIONS) == set(Action)
    walked = {scenario.action for scenario in SCENARIOS.values()} | READS | RECEIVED
    assert walked | PLANNED == set(Action)
    assert walked & PLANNED == set(), "a planned action has a service now: walk it here"


def test_todays_rules_in_words():
    """The behaviour before the table, which the table must keep."""
    site_staff = {Role.INVESTIGATOR, Role.COORDINATOR}
    for action in (Action.ENTER, Action.CORRECT, Action.ENROL, Action.RANDOMISE, Action.RECORD_AE):
        assert roles_allowed(action) == site_staff, action
    for action in (Action.UNBLIND, Action.SUBMIT_SAE):
        assert roles_allowed(action) == {Role.INVESTIGATOR}, action
    for action in (Action.ACKNOWLEDGE_SAE, Action.MANAGE_ALLOCATION_LISTS):
        assert roles_allowed(action) == {Role.DATA_MANAGER, Role.ADMIN}, action
    assert roles_allowed(Action.READ_AUDIT) == {Role.MONITOR, Role.DATA_MANAGER, Role.ADMIN}
    assert roles_allowed(Action.VIEW) == set(Role)
    # Issue 13: a monitor of the site or a data manager verifies; a monitor writes no data.
    assert roles_allowed(Action.SDV) == {Role.MONITOR, Role.DATA_MANAGER}
    writes = (Action.ENTER, Action.CORRECT, Action.ENROL, Action.RECORD_AE, Action.SUBMIT_SAE)
    assert not any(Role.MONITOR in roles_allowed(action) for action in writes)
    # Queries: the reviewers raise and close, the site answers; nobody does both.
    assert roles_allowed(Action.RAISE_QUERY) == roles_allowed(Action.CLOSE_QUERY)
    assert roles_allowed(Action.CLOSE_QUERY) == {Role.MONITOR, Role.DATA_MANAGER}
    assert roles_allowed(Action.ANSWER_QUERY) == {Role.INVESTIGATOR, Role.COORDINATOR}


def _functions_taking_by():
    """Every module-level function of the project with a keyword-only `by` argument."""
    found = {}
    for info in pkgutil.walk_packages(ecrf.__path__, prefix="ecrf."):
        if ".migrations" in info.name or ".management" in info.name:
            continue
        module = import_module(info.name)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            # A private helper (`_after_save`) is a step of the public service around it.
            if function.__module__ != module.__name__ or name.startswith("_"):
                continue
            parameter = inspect.signature(function).parameters.get("by")
            if parameter is not None and parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                found[name] = info.name
    return found


def test_every_function_that_writes_for_someone_is_walked_or_a_step_of_one():
    walked = {service.split(" ")[0] for service in SCENARIOS}
    assert set(_functions_taking_by()) == walked | set(STEPS)


def test_every_walked_service_asks_the_table_itself():
    """Through `require`, not a role check of its own that could drift from the table."""
    functions = _functions_taking_by()

    def source(name):
        return inspect.getsource(getattr(import_module(functions[name]), name))

    # The exports ask through one function of their own: whether a user may export these
    # sites, for asking and for downloading alike.
    assert "require(by, Action.EXPORT" in inspect.getsource(export_require)
    own_checks = [
        name
        for name in {service.split(" ")[0] for service in SCENARIOS}
        if not any(
            door in source(name)
            for door in ("require(by, Action.", "export_require(by,", "export_prepare(by=by")
        )
    ]
    assert own_checks == []


# -- the functions around it --------------------------------------------------------------------


def test_one_query_answers_every_question_about_a_patient(world, people, django_assert_num_queries):
    patient = world.bxp_patients[0]
    with django_assert_num_queries(1):
        actions = actions_for(world.alice, patient=patient)
    assert Action.UNBLIND in actions and Action.READ_AUDIT not in actions
    with django_assert_num_queries(0):
        assert actions_for(None, patient=patient) == frozenset()


def test_without_a_site_can_answers_for_any_site_but_a_write_needs_one(world, people):
    assert can(world.charlie, Action.ENTER, study=world.rct)
    assert not can(world.rene, Action.ENTER, study=world.rct)
    with pytest.raises(TypeError):
        require(world.charlie, Action.ENTER, study=world.rct)


def test_an_inactive_membership_or_account_gives_nothing(world, people):
    patient = world.bxp_patients[0]
    Membership.objects.filter(user=world.alice).update(active=False)
    assert actions_for(world.alice, patient=patient) == frozenset()
    world.bob.is_active = False
    assert actions_for(world.bob, patient=patient) == frozenset()


def test_blinding_stays_a_separate_check(world, people):
    """A blinded data manager may manage lists by role, but a list shows arms: refused."""
    Membership.objects.filter(user=world.diane).update(unblinded=False)
    assert can(world.diane, Action.MANAGE_ALLOCATION_LISTS, study=world.rct, site=world.bxp)
    assert not can_see_allocation(world.diane, study=world.rct)
    assert not can_manage_allocation_lists(world.diane, study=world.rct)
    before = fingerprint()
    with pytest.raises(PermissionDenied, match="unblinded"):
        allocation_list_generate(study=world.rct, site=world.bxp, size=4, by=world.diane)
    assert fingerprint() == before
    # And an unblinded investigator is still no list manager.
    assert can_see_allocation(world.alice, study=world.rct)
    assert not can_manage_allocation_lists(world.alice, study=world.rct)


def test_the_memberships_are_read_once_a_request_and_again_after_a_change(
    world, django_assert_num_queries
):
    from ecrf.accounts.access import memberships_per_request, roles_for
    from ecrf.accounts.models import Membership

    membership = Membership.objects.get(user=world.alice, study=world.rct, site=world.bxp)
    with memberships_per_request():
        with django_assert_num_queries(1):
            assert roles_for(world.alice, study=world.rct, site=world.bxp) == {"investigator"}
            assert roles_for(world.alice, study=world.rct) == {"investigator"}
            assert not can(world.alice, Action.SDV, study=world.rct, site=world.bxp)
        # A membership saved in the same request: read again, not the stale roles.
        membership.role = "coordinator"
        membership.save()
        with django_assert_num_queries(1):
            assert roles_for(world.alice, study=world.rct, site=world.bxp) == {"coordinator"}
        membership.active = False
        membership.save()
        assert roles_for(world.alice, study=world.rct, site=world.bxp) == set()
    # Outside a request (a task, a service called on its own): read on every call.
    with django_assert_num_queries(2):
        roles_for(world.alice, study=world.rct)
        roles_for(world.alice, study=world.rct)
