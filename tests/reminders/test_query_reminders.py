"""A query the site has not answered reminds the site's investigator and coordinator every
`query_reminder_days` (7 in the trial's protocol), counted from the raise or the reopening;
an answer withdraws what has not gone yet."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ecrf.reminders.emails import Details, headline
from ecrf.reminders.models import Kind, Reminder
from ecrf.reminders.rules import query_reminder_due
from ecrf.review.models import QueryMessage
from ecrf.review.queries import query_answer, query_create, query_reopen
from tests.reminders.conftest import paris, rows, sweep

pytestmark = pytest.mark.django_db

# Before the tests' clock (15 December 2026), so that a reopening now comes after it.
RAISED = date(2026, 11, 20)


def _query(world, patient, day: date = RAISED):
    return query_create(
        patient=patient,
        entry=None,
        visit=patient.visits.get(code="M1"),
        field="",
        text="Please check the visit's data.",
        by=world.monica,
        now=paris(day, 10),
    )


def test_the_rule_reminds_every_n_days_of_the_wait():
    since = RAISED
    due = [
        n
        for n in range(30)
        if query_reminder_due(since + timedelta(days=n), waiting_since=since, every_days=7)
    ]
    assert due == [7, 14, 21, 28]


def test_an_unanswered_query_reminds_the_site_staff_on_day_7_and_14(world, trial):
    bxp, _str = trial
    query = _query(world, bxp)
    sweep(paris(RAISED + timedelta(days=6)))
    assert rows(kind=Kind.QUERY) == []
    sweep(paris(RAISED + timedelta(days=7)))
    assert rows(kind=Kind.QUERY) == [("query", 7, "alice", None), ("query", 7, "bob", None)]
    sweep(paris(RAISED + timedelta(days=7), 9))  # the same day again: nothing new
    sweep(paris(RAISED + timedelta(days=14)))
    assert [r[1] for r in rows(kind=Kind.QUERY)] == [7, 7, 14, 14]
    reminder = (
        Reminder.objects.filter(kind=Kind.QUERY).select_related("patient").order_by("due_at")
    ).first()
    assert headline(reminder, Details.for_rows([reminder])) == (
        f"{bxp.subject_code}: query #{query.pk} has been open for 7 days and waits for the "
        "site's answer."
    )


def test_an_answered_query_reminds_nobody_and_a_reopened_one_counts_again(world, trial):
    bxp, _str = trial
    query = _query(world, bxp)
    query_answer(by=world.alice, query=query, text="Checked: the data are right.")
    sweep(paris(RAISED + timedelta(days=7)))
    assert rows(kind=Kind.QUERY) == []
    query_reopen(by=world.monica, query=query, text="The source says otherwise.")
    reopened_on = QueryMessage.objects.get(query=query, kind="reopen").at
    day = reopened_on.date() + timedelta(days=7)
    sweep(paris(day))
    assert {r[1] for r in rows(kind=Kind.QUERY)} == {(day - RAISED).days}


def test_an_answer_withdraws_the_reminder_not_yet_sent(world, trial):
    bxp, _str = trial
    query = _query(world, bxp)
    sweep(paris(RAISED + timedelta(days=7)), dry_run=False)
    Reminder.objects.filter(kind=Kind.QUERY).update(status=Reminder.Status.DUE, email=None)
    query_answer(by=world.bob, query=query, text="Checked: the data are right.")
    result = sweep(paris(RAISED + timedelta(days=8)))
    assert result.cancelled == 2
    assert set(Reminder.objects.filter(kind=Kind.QUERY).values_list("status", flat=True)) == {
        "cancelled"
    }
