"""The form index: one row per form instance, in step with the 19 form tables and the safety log.

The demo data are written through every service (case report forms, enrolment and screen
failure, adverse events, SAE reports): the index must agree with the tables after it, and
the pages that read the index cost the same for a patient with few forms as for one with
many.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pghistory.models
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import reverse

from ecrf.core.errors import StaleVersion
from ecrf.crfs.models import FORM_MODELS
from ecrf.crfs.services import crf_save
from ecrf.patients.form_index import form_index_problems, indexed_models
from ecrf.patients.models import FormIndexEntry, Patient
from ecrf.safety.models import AdverseEvent, SaeReport


@pytest.fixture(scope="module")
def _demo_once(django_db_setup, django_db_blocker):
    """The demo data, seeded once for the module and rolled back afterwards."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("seed_demo", stdout=StringIO())
        yield
        transaction.set_rollback(True)


@pytest.fixture
def demo(_demo_once, db):
    return None


@pytest.fixture
def investigator(client, demo):
    client.force_login(get_user_model().objects.get(username="investigator.bordeaux"))
    return client


def casebook_url(subject_code: str) -> str:
    patient = Patient.objects.get(subject_code=subject_code)
    return reverse("patients:detail", args=[patient.study.code, subject_code])


def visit_url(subject_code: str, code: str) -> str:
    patient = Patient.objects.get(subject_code=subject_code)
    return reverse("crfs:visit", args=[patient.study.code, subject_code, code, 1])


def test_every_form_table_and_the_safety_log_are_indexed():
    assert len(FORM_MODELS) == 19
    assert {model.index_code() for model in indexed_models()} == {
        *FORM_MODELS,
        "adverse_event",
        "sae_report",
    }


def test_the_index_agrees_with_the_tables_after_the_demo(demo):
    assert form_index_problems() == []
    instances = sum(model.objects.count() for model in FORM_MODELS.values())
    assert FormIndexEntry.objects.count() == (
        instances + AdverseEvent.objects.count() + SaeReport.objects.count()
    )
    out = StringIO()
    call_command("form_index_check", stdout=out)
    assert "The form index agrees with the forms" in out.getvalue()
    # The checklist of the screen failure was decided by the service: a new version.
    failed = Patient.objects.get(subject_code="BXP-006")
    entry = FormIndexEntry.objects.get(patient=failed, form_code="eligibility")
    checklist = FORM_MODELS["eligibility"].objects.get(pk=entry.object_id)
    assert (checklist.eligible, entry.version) == (False, checklist.version)


def test_enrolment_decides_the_checklist_in_a_new_audited_version(demo):
    patient = Patient.objects.get(subject_code="BXP-002")
    checklist = FORM_MODELS["eligibility"].objects.get(patient=patient)
    decided = pghistory.models.Events.objects.get(
        pgh_obj_model="crfs.Eligibility",
        pgh_obj_id=str(checklist.pk),
        pgh_context__reason="enrolment",
    )
    assert decided.pgh_data["eligible"] is True
    assert decided.pgh_data["version"] == checklist.version > 1
    # A save based on the checklist as the investigator last saw it is now a stale one.
    with pytest.raises(StaleVersion):
        crf_save(
            visit=checklist.visit,
            form_code="eligibility",
            values={"answers": {**checklist.answers, "I1": True}},
            by=checklist.entered_by,
            expected_version=checklist.version - 1,
            reason="re-read the consent form",
        )


def test_the_check_names_each_disagreement(demo):
    # Two mRSS the demo's review left alone (a verified entry, or one a query or an SDV
    # mark is about, cannot be broken that way: constraints and PROTECT stop it).
    mrss = FormIndexEntry.objects.filter(
        form_code="mrss", review_version__isnull=True, sdv_marks__isnull=True, queries__isnull=True
    ).order_by("object_id")
    changed, dropped = mrss[0], mrss[1]
    FormIndexEntry.objects.filter(pk=changed.pk).update(status="in_progress", version=7)
    FormIndexEntry.objects.filter(pk=dropped.pk).delete()
    FormIndexEntry.objects.create(
        patient=changed.patient,
        visit=changed.visit,
        form_code="dlqi",
        object_id=999999,
        status="complete",
        version=1,
        updated_at=changed.updated_at - timedelta(days=1),
    )
    FormIndexEntry.objects.create(
        patient=changed.patient,
        form_code="vital_signs",
        object_id=1,
        status="complete",
        version=1,
        updated_at=changed.updated_at,
    )
    assert form_index_problems() == [
        f"mrss #{dropped.object_id} is not in the form index",
        f"mrss #{changed.object_id}: the index says status 'in_progress' instead of "
        f"'complete', version 7 instead of {changed.version}",
        "the form index lists dlqi #999999, which does not exist",
        "the form index lists vital_signs forms, which no model indexes",
    ]
    err = StringIO()
    with pytest.raises(CommandError, match="4 problem"):
        call_command("form_index_check", stderr=err)
    assert f"mrss #{dropped.object_id} is not in the form index" in err.getvalue()


# Session, user, the account's memberships (every role and button, the second factor and
# the arm: one query a request), study, patient, the freezes and locks over the casebook,
# allocation and its unblinding, visits, the form index (every form of every visit at
# once), the mRSS series, the adverse-event log and its lab prompts, deviations, the
# queries not closed per visit and the investigator signatures (the review's tags): 32
# queries before the form index (one per form type of the protocol), 16 now. The session's
# expiry is pushed at most once a minute (not on this second request).
CASEBOOK_QUERIES = 16


@pytest.mark.parametrize(
    "subject_code, locks",
    [
        ("BXP-004", 0),  # enrolled, pre-inclusion and inclusion visits entered, M1 overdue
        # Completed: every visit to M12, an unscheduled one, adverse events; its casebook
        # is locked in the demo, which reads the locks with their names (one query).
        ("BXP-001", 1),
    ],
)
def test_casebook_costs_the_same_for_a_small_and_a_large_patient(
    investigator, django_assert_num_queries, subject_code, locks
):
    url = casebook_url(subject_code)
    investigator.get(url)  # the session's first request updates it
    with django_assert_num_queries(CASEBOOK_QUERIES + locks):
        response = investigator.get(url)
    assert response.context["matrix"]


# Session, user, the account's memberships (roles, second factor), study, visit, the
# freezes and locks over the visit and its forms, deviations, the visit's forms and their
# conditions (facts on the patient), the form index, the visit order, the queries not
# closed per form and the signatures of the visit and of the casebook (the review's tags):
# 15 to 20 queries before the form index (one per form type of the visit), 11 now. A form
# still in progress adds the one query that reads what it misses.
VISIT_QUERIES = 11


@pytest.mark.parametrize(
    "code, forms",
    [
        ("M12", 0),  # planned, nothing entered yet
        ("SCR", 8),  # the pre-inclusion visit, every form complete
    ],
)
def test_visit_page_costs_the_same_with_no_form_and_with_every_form(
    investigator, django_assert_num_queries, code, forms
):
    url = visit_url("BXP-002", code)
    investigator.get(url)
    with django_assert_num_queries(VISIT_QUERIES):
        response = investigator.get(url)
    listed = [
        instance for *_, instances, _, _ in response.context["rows"] for instance in instances
    ]
    assert len(listed) == forms
