"""Queries: every move of the status table, every refusal, the thread that loses nothing,
the ageing buckets, the counts, and the system's own queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ecrf.crfs.models import Consent, Echocardiography
from ecrf.crfs.services import WarningsPending, crf_save
from ecrf.patients.models import FormIndexEntry, Visit
from ecrf.review.auto_queries import (
    SAE_OVERDUE,
    VISIT_OVERDUE,
    queries_raise_automatic,
    sae_overdue,
    visit_overdue,
    warning_queries,
)
from ecrf.review.locks import data_freeze, data_lock
from ecrf.review.models import Query, QueryMessage
from ecrf.review.queries import (
    AGE_BUCKETS,
    open_queries_by_entry,
    open_queries_by_patient,
    open_queries_by_visit,
    open_query_counts,
    query_ageing,
    query_answer,
    query_close,
    query_correct,
    query_create,
    query_raise,
    query_reopen,
)
from ecrf.review.states import QUERY_TRANSITIONS, QueryStatus
from ecrf.safety.models import AdverseEvent
from ecrf.safety.services import ae_create
from tests.review.conftest import entry, screened_at
from tests.safety.conftest import CONSENT_DAY, ae_values, sae_values

pytestmark = pytest.mark.django_db


def _raise(world, patient, *, field="consent_version", text="Version 2.1 or 2.2?", by=None):
    return query_raise(
        by=by or world.monica, entry=entry(patient, "consent"), field=field, text=text
    )


def _thread(query) -> list[tuple[str, str]]:
    return list(QueryMessage.objects.filter(query=query).order_by("pk").values_list("kind", "text"))


def _fresh(query) -> Query:
    return Query.objects.get(pk=query.pk)


# -- the moves ---------------------------------------------------------------------------------


def test_a_raised_query_is_open_with_its_question_as_first_message(world, patient):
    query = _raise(world, patient)
    assert (query.status, query.origin, query.raised_by, query.field) == (
        "open",
        "manual",
        world.monica,
        "consent_version",
    )
    assert query.visit == patient.visits.get(code="SCR")
    assert _thread(query) == [("raise", "Version 2.1 or 2.2?")]
    assert timezone.now() - timedelta(minutes=1) < query.opened_at <= timezone.now()


def test_answered_then_closed_keeps_the_whole_thread(world, patient):
    query = _raise(world, patient)
    query_answer(by=world.alice, query=query, text="Version 2.1, as on the source.")
    assert _fresh(query).status == QueryStatus.ANSWERED
    query_close(by=world.monica, query=query, text="Agreed with the source.")
    closed = _fresh(query)
    assert closed.status == "closed" and closed.closed_at >= closed.opened_at
    assert _thread(query) == [
        ("raise", "Version 2.1 or 2.2?"),
        ("answer", "Version 2.1, as on the source."),
        ("close", "Agreed with the source."),
    ]


def test_reopened_answered_again_and_closed(world, patient):
    query = _raise(world, patient)
    query_answer(by=world.bob, query=query, text="Version 2.1, as on the source.")
    query_reopen(by=world.diane, query=query, text="The source binder says 2.2.")
    assert _fresh(query).status == QueryStatus.REOPENED
    query_answer(by=world.alice, query=query, text="Checked again: 2.1 is right.")
    assert _fresh(query).status == QueryStatus.ANSWERED
    query_close(by=world.diane, query=query, text="Settled with the investigator.")
    assert [kind for kind, _text in _thread(query)] == [
        "raise",
        "answer",
        "reopen",
        "answer",
        "close",
    ]


def test_an_open_query_raised_in_error_is_closed_by_the_reviewer(world, patient):
    query = _raise(world, patient)
    query_close(by=world.monica, query=query, text="Raised on the wrong patient.")
    assert _fresh(query).status == QueryStatus.CLOSED


def test_every_move_of_the_table_is_taken_by_a_test():
    assert set(QUERY_TRANSITIONS) == {
        ("open", "answered"),
        ("reopened", "answered"),
        ("answered", "closed"),
        ("open", "closed"),
        ("reopened", "closed"),
        ("answered", "reopened"),
    }


def test_a_correction_goes_through_crf_save_with_the_query_as_its_reason(world, patient):
    query = _raise(world, patient)
    query_correct(
        by=world.alice, query=query, values={"consent_version": "2.2"}, expected_version=1
    )
    consent = Consent.objects.get(patient=patient)
    assert (consent.consent_version, consent.version) == ("2.2", 2)
    assert _fresh(query).status == QueryStatus.ANSWERED
    message = QueryMessage.objects.get(query=query, kind="correction")
    assert (message.version, message.by, message.text) == (
        2,
        world.alice,
        "Corrected: consent form version.",
    )
    # The other way: the form's audit event of version 2 names the query.
    event = Consent.pgh_event_model.objects.filter(pgh_obj_id=consent.pk, version=2).get()
    assert event.pgh_context["reason"] == f"Query #{query.pk}: Version 2.1 or 2.2?"
    assert entry(patient, "consent").version == 2


def _save_consent(patient, *, by, reason: str, version: str = "2.2"):
    consent = Consent.objects.get(patient=patient)
    return crf_save(
        visit=consent.visit,
        form_code="consent",
        values={"consent_version": version},
        by=by,
        expected_version=consent.version,
        reason=reason,
    )


def test_a_save_on_the_form_whose_reason_names_the_query_answers_it(world, patient):
    """The form's own page: "Correct on this form" prefills the reason with the query."""
    query = _raise(world, patient)
    _save_consent(patient, by=world.bob, reason=f"Query #{query.pk}: version 2.2 on the copy")
    assert _fresh(query).status == QueryStatus.ANSWERED
    message = QueryMessage.objects.get(query=query, kind="correction")
    assert (message.version, message.by, message.text) == (
        2,
        world.bob,
        "Corrected on the form (version 2).",
    )
    # Answered, the query waits for the reviewer: another save naming it adds nothing.
    _save_consent(patient, by=world.bob, reason=f"Query #{query.pk}: back to 2.1", version="2.1")
    assert [kind for kind, _text in _thread(query)] == ["raise", "correction"]


def test_a_save_naming_a_closed_or_another_forms_query_leaves_it_alone(world, patient):
    closed = _raise(world, patient)
    query_close(by=world.monica, query=closed, text="Raised on the wrong field.")
    elsewhere = query_raise(
        by=world.monica, entry=entry(patient, "demographics"), text="Year of birth?"
    )
    _save_consent(patient, by=world.alice, reason=f"Query #{closed.pk}: version 2.2")
    _save_consent(
        patient, by=world.alice, reason=f"Query #{elsewhere.pk}: version 2.1", version="2.1"
    )
    assert _fresh(closed).status == QueryStatus.CLOSED
    assert [kind for kind, _text in _thread(elsewhere)] == ["raise"]
    assert Consent.objects.get(patient=patient).version == 3  # the saves themselves went on


def test_a_correction_with_an_explanation_uses_it_as_the_reason(world, patient):
    query = _raise(world, patient)
    query_correct(
        by=world.bob,
        query=query,
        values={"consent_version": "2.2"},
        expected_version=1,
        text="The signed copy is version 2.2.",
    )
    consent = Consent.objects.get(patient=patient)
    event = Consent.pgh_event_model.objects.filter(pgh_obj_id=consent.pk, version=2).get()
    assert event.pgh_context["reason"] == (f"Query #{query.pk}: The signed copy is version 2.2.")
    assert _thread(query)[-1] == ("correction", "The signed copy is version 2.2.")


def test_a_correction_of_an_adverse_event_goes_through_ae_update(world, patient):
    event = ae_create(patient=patient, by=world.alice, values=ae_values())
    ae_entry = FormIndexEntry.objects.get(form_code="adverse_event", object_id=event.pk)
    query = query_raise(
        by=world.monica, entry=ae_entry, field="ctcae_grade", text="Grade 2 on the source?"
    )
    query_correct(by=world.alice, query=query, values={"ctcae_grade": 2}, expected_version=1)
    event = AdverseEvent.objects.get(pk=event.pk)
    assert (event.ctcae_grade, event.version, event.term) == (2, 2, "Nausea")
    assert QueryMessage.objects.get(query=query, kind="correction").version == 2


# -- refusals ----------------------------------------------------------------------------------


def test_an_answer_to_a_closed_query_is_refused_and_nothing_is_saved(world, patient):
    query = _raise(world, patient)
    query_close(by=world.monica, query=query, text="Raised on the wrong patient.")
    with pytest.raises(ValidationError) as refused:
        query_answer(by=world.alice, query=query, text="Version 2.1, as on the source.")
    assert refused.value.messages == [
        f"Query #{query.pk} is closed: nothing more can be added. Raise a new query."
    ]
    with pytest.raises(ValidationError):
        query_correct(
            by=world.alice, query=query, values={"consent_version": "2.2"}, expected_version=1
        )
    assert Consent.objects.get(patient=patient).version == 1
    with pytest.raises(ValidationError):
        query_reopen(by=world.monica, query=query, text="Reopening a closed one.")
    assert len(_thread(query)) == 2


def test_an_answered_query_takes_no_second_answer_and_an_open_one_is_not_reopened(world, patient):
    query = _raise(world, patient)
    with pytest.raises(ValidationError) as refused:
        query_reopen(by=world.monica, query=query, text="Nothing to reopen yet.")
    assert "is not answered yet" in refused.value.messages[0]
    query_answer(by=world.alice, query=query, text="Version 2.1, as on the source.")
    with pytest.raises(ValidationError) as refused:
        query_answer(by=world.bob, query=query, text="And again, version 2.1.")
    assert "is already answered" in refused.value.messages[0]


def test_an_investigator_cannot_close_and_a_monitor_cannot_answer_or_correct(world, patient):
    query = _raise(world, patient)
    with pytest.raises(PermissionDenied):
        query_close(by=world.alice, query=query, text="Closing my own query.")
    with pytest.raises(PermissionDenied):
        query_answer(by=world.monica, query=query, text="Answering for the site.")
    with pytest.raises(PermissionDenied):
        query_correct(
            by=world.monica, query=query, values={"consent_version": "2.2"}, expected_version=1
        )
    with pytest.raises(PermissionDenied):
        _raise(world, patient, by=world.alice)
    assert len(_thread(query)) == 1


def test_another_sites_staff_is_refused(world, patient):
    query = _raise(world, patient)
    with pytest.raises(PermissionDenied):
        query_answer(by=world.charlie, query=query, text="Not my site at all.")
    assert Query.objects.visible_to(world.charlie).count() == 0
    assert QueryMessage.objects.visible_to(world.charlie).count() == 0
    assert Query.objects.visible_to(world.alice).get() == query


def test_messages_name_the_field_and_what_is_allowed(world, patient):
    with pytest.raises(ValidationError) as refused:
        _raise(world, patient, text="")
    assert refused.value.message_dict == {"text": ["Query: write the message."]}
    with pytest.raises(ValidationError) as refused:
        _raise(world, patient, text="why?")
    assert refused.value.message_dict == {"text": ["Query: give at least 10 characters."]}
    with pytest.raises(ValidationError) as refused:
        _raise(world, patient, field="total")
    assert refused.value.message_dict == {"field": ["total is not a field of Informed consent."]}
    assert not Query.objects.exists()


def test_a_correction_that_changes_nothing_is_refused(world, patient):
    query = _raise(world, patient)
    with pytest.raises(ValidationError) as refused:
        query_correct(
            by=world.alice, query=query, values={"consent_version": "2.1"}, expected_version=1
        )
    assert "nothing was corrected" in refused.value.message_dict["values"][0]
    assert _fresh(query).status == "open"


def test_a_correction_of_a_warned_value_asks_for_the_confirmation_first(world, patient):
    scr = patient.visits.get(code="SCR")
    crf_save(
        visit=scr,
        form_code="echocardiography",
        values={"exam_date": CONSENT_DAY, "lvef_pct": 55},
        by=world.alice,
        expected_version=0,
    )
    query = query_raise(
        by=world.monica,
        entry=entry(patient, "echocardiography"),
        field="lvef_pct",
        text="The report says 25 %.",
    )
    with pytest.raises(WarningsPending):
        query_correct(by=world.alice, query=query, values={"lvef_pct": 25}, expected_version=1)
    assert _fresh(query).status == "open"
    query_correct(
        by=world.alice,
        query=query,
        values={"lvef_pct": 25},
        expected_version=1,
        confirmed=frozenset({"lvef_low"}),
    )
    assert Echocardiography.objects.get(patient=patient).lvef_pct == 25


def test_a_freeze_lets_queries_go_on_but_refuses_the_correction(world, patient):
    query = _raise(world, patient)
    data_freeze(by=world.diane, patient=patient, reason="Interim analysis cut-off")
    with pytest.raises(ValidationError) as refused:
        query_correct(
            by=world.alice, query=query, values={"consent_version": "2.2"}, expected_version=1
        )
    assert "frozen" in refused.value.messages[0]
    query_answer(by=world.alice, query=query, text="Version 2.1, as on the source.")
    query_close(by=world.monica, query=query, text="Agreed with the source.")
    assert _fresh(query).status == "closed"


def test_a_lock_stops_every_move(world, patient):
    query = _raise(world, patient)
    data_lock(by=world.diane, patient=patient, reason="Casebook complete and reviewed")
    for call in (
        lambda: _raise(world, patient, text="Another question here."),
        lambda: query_answer(by=world.alice, query=query, text="Version 2.1, as on the source."),
        lambda: query_close(by=world.monica, query=query, text="Agreed with the source."),
    ):
        with pytest.raises(ValidationError) as refused:
            call()
        assert "locked" in refused.value.messages[0]
    assert _thread(query) == [("raise", "Version 2.1 or 2.2?")]


# -- the thread never loses a message ----------------------------------------------------------


def test_the_database_refuses_to_edit_or_delete_a_message_or_a_query(world, patient):
    query = _raise(world, patient)
    message = QueryMessage.objects.get(query=query)
    for sql, params in (
        ("UPDATE review_querymessage SET text = 'Something else.' WHERE id = %s", [message.pk]),
        ("DELETE FROM review_querymessage WHERE id = %s", [message.pk]),
        ("DELETE FROM review_query WHERE id = %s", [query.pk]),
        ("UPDATE review_query SET field = 'consent_date' WHERE id = %s", [query.pk]),
        ("UPDATE review_query SET raised_by_id = %s WHERE id = %s", [world.diane.pk, query.pk]),
    ):
        with (
            # A message is an audit record: the audit's own trigger refuses it first.
            pytest.raises(Exception, match="pgtrigger: Cannot|audit rows are append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, params)
    assert _thread(query) == [("raise", "Version 2.1 or 2.2?")]


def test_a_query_keeps_its_form_the_form_cannot_go(world, patient):
    query = _raise(world, patient)
    with pytest.raises(IntegrityError), transaction.atomic():
        FormIndexEntry.objects.filter(pk=query.entry_id).delete()


# -- ageing and counts -------------------------------------------------------------------------


def test_ageing_counts_days_open_in_four_buckets_in_one_query(
    world, patient, django_assert_num_queries
):
    now = timezone.now()
    ages = [0, 7, 8, 14, 15, 30, 31, 90]
    consent = entry(patient, "consent")
    for days in ages:
        query_create(
            patient=patient,
            entry=consent,
            visit=None,
            field="",
            text="How old is this one?",
            by=world.monica,
            now=now - timedelta(days=days, hours=1),
        )
    with django_assert_num_queries(1):
        ageing = query_ageing(Query.objects.all())
    assert list(ageing) == [code for code, *_rest in AGE_BUCKETS]
    assert ageing == {"0-7": 2, "8-14": 2, "15-30": 2, "over-30": 2}


def test_counts_per_patient_visit_and_form_leave_closed_queries_out(world, patient):
    first = _raise(world, patient)
    _raise(world, patient, field="consent_date", text="Date on the source?")
    mrss = query_raise(by=world.monica, entry=entry(patient, "mrss"), text="Assessor's name?")
    query_close(by=world.monica, query=first, text="Raised on the wrong field.")
    scr = patient.visits.get(code="SCR")
    assert open_queries_by_patient([patient]) == {patient.pk: 2}
    assert open_queries_by_visit([patient]) == {(patient.pk, scr.pk): 2}
    assert open_queries_by_entry([entry(patient, "consent"), mrss.entry]) == {
        entry(patient, "consent").pk: 1,
        mrss.entry_id: 1,
    }
    assert open_query_counts(study=world.rct) == {patient.pk: 2}
    assert open_query_counts(study=world.rct, site=world.str_) == {}


# -- the system's queries ----------------------------------------------------------------------


def test_the_rules_decide_from_what_a_row_says():
    today = timezone.localdate()
    late = today - timedelta(days=1)
    assert visit_overdue(status="planned", latest_date=late, today=today, entered=False)
    assert not visit_overdue(status="planned", latest_date=today, today=today, entered=False)
    assert not visit_overdue(status="in_progress", latest_date=late, today=today, entered=True)
    assert not visit_overdue(status="missed", latest_date=late, today=today, entered=False)
    now = timezone.now()
    assert sae_overdue(due_at=now - timedelta(minutes=1), submitted_at=None, now=now)
    assert not sae_overdue(due_at=now - timedelta(minutes=1), submitted_at=now, now=now)
    assert warning_queries([{"code": "lvef_low", "message": "LVEF 25 % is under 30 %."}]) == [
        (
            "warning:lvef_low",
            "lvef_pct",
            "Confirmed at save: LVEF 25 % is under 30 %. Please check it against the source "
            "document.",
        )
    ]


def test_a_confirmed_warning_raises_a_query_once(world, patient):
    crf_save(
        visit=patient.visits.get(code="SCR"),
        form_code="echocardiography",
        values={"exam_date": CONSENT_DAY, "lvef_pct": 25},
        by=world.alice,
        expected_version=0,
        confirmed=frozenset({"lvef_low"}),
    )
    (query,) = queries_raise_automatic()
    assert (query.origin, query.rule, query.field, query.raised_by) == (
        "auto",
        "warning:lvef_low",
        "lvef_pct",
        None,
    )
    assert query.entry == entry(patient, "echocardiography")
    assert "LVEF 25 % is under 30 %" in _thread(query)[0][1]
    assert queries_raise_automatic() == []
    query_answer(by=world.alice, query=query, text="The report does say 25 %.")
    query_close(by=world.monica, query=query, text="Checked against the report.")
    assert queries_raise_automatic() == []  # closed is settled: not raised again
    assert Query.objects.count() == 1


def test_a_visit_past_its_window_with_nothing_entered_raises_a_query(world, patient):
    late = timezone.localdate() - timedelta(days=3)
    # The consented patient's SCR has data; another's has nothing entered.
    Visit.objects.filter(patient=patient, code="SCR").update(latest_date=late)
    empty = screened_at(world, world.bxp, by=world.alice).visits.get(code="SCR")
    Visit.objects.filter(pk=empty.pk).update(latest_date=late)
    raised = queries_raise_automatic()
    assert [(q.rule, q.visit_id, q.entry_id) for q in raised] == [(VISIT_OVERDUE, empty.pk, None)]
    assert "Visit SCR is past its window" in _thread(raised[0])[0][1]
    assert queries_raise_automatic() == []


def test_an_overdue_initial_sae_report_raises_a_query_on_its_event(world, patient):
    event = ae_create(patient=patient, by=world.alice, values=sae_values())
    report = event.sae_reports.get()
    assert report.due_at < timezone.now()
    (query,) = queries_raise_automatic()
    assert (query.rule, query.entry.form_code, query.entry.object_id) == (
        SAE_OVERDUE,
        "adverse_event",
        event.pk,
    )
    assert queries_raise_automatic() == []


def test_a_locked_casebook_gets_no_automatic_query_a_frozen_one_does(world, patient):
    event = ae_create(patient=patient, by=world.alice, values=sae_values())
    lock = data_lock(by=world.diane, patient=patient, reason="Casebook complete and reviewed")
    assert queries_raise_automatic() == []
    from ecrf.review.locks import data_unlock

    data_unlock(by=world.diane, lock=lock, reason="Late laboratory results to enter")
    data_freeze(by=world.diane, patient=patient, reason="Interim analysis cut-off")
    (query,) = queries_raise_automatic()
    assert query.entry.object_id == event.pk


def test_the_beat_task_and_the_command_run_the_sweep(world, patient, settings):
    from io import StringIO

    from django.core.management import call_command

    from ecrf.review.tasks import raise_automatic_queries

    assert "raise-automatic-queries" in settings.CELERY_BEAT_SCHEDULE
    ae_create(patient=patient, by=world.alice, values=sae_values())
    out = StringIO()
    call_command("raise_automatic_queries", stdout=out)
    assert out.getvalue().endswith("1 queries raised.\n")
    assert raise_automatic_queries.delay().get() == 0


def test_the_thread_is_in_the_patients_audit_trail(world, patient, client):
    from django.urls import reverse

    query = _raise(world, patient)
    query_answer(by=world.alice, query=query, text="Version 2.1, as on the source.")
    client.force_login(world.diane)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = client.get(reverse("patients:audit", args=[world.rct.code, patient.subject_code]))
    content = page.content.decode()
    assert "Version 2.1 or 2.2?" in content and "Version 2.1, as on the source." in content
    assert f"query answered: #{query.pk}" in content
