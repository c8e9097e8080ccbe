"""The reminders' screens: the upcoming visits with their reminders, a person's settings,
and the study's reminders log with one reminder's email.

The upcoming-visits tests run on the suite's clock (today is tests.clock.TODAY); the log
tests sweep at the fixed instants of tests/reminders/conftest.py (the trial's patients
included on Monday 4 January 2027).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pghistory.models
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.formats import date_format
from django.utils.html import escape

from ecrf.accounts.models import Role, User
from ecrf.notifications.models import OutboundEmail
from ecrf.patients.models import Visit
from ecrf.reminders import views as reminder_views
from ecrf.reminders.models import Delivery, Kind, Reminder, ReminderPreference
from ecrf.reminders.rules import VisitDue
from tests.clock import TODAY
from tests.factories import MembershipFactory, PatientFactory, UserFactory
from tests.reminders.conftest import enrol, paris, sweep

pytestmark = pytest.mark.django_db

OPENS_IN_7 = date(2027, 1, 20)  # the trial patients' M1 window opens on 27 January


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def short(day: date) -> str:
    with translation.override("en"):
        return date_format(day, "SHORT_DATE_FORMAT")


def upcoming_url(world) -> str:
    return reverse("patients:upcoming", args=[world.rct.code])


def log_url(study, **query) -> str:
    url = reverse("reminders:log", args=[study.code])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def detail_url(study, reminder) -> str:
    return reverse("reminders:detail", args=[study.code, reminder.pk])


# -- the upcoming visits ---------------------------------------------------------------------


def included_20_days_ago(patient):
    """M1's window opens in 3 days (18 December), its target in 10, its last day in 17: its
    "opens in 7 days" reminder went 4 days ago."""
    return enrol(patient, TODAY - timedelta(days=20))


def test_upcoming_shows_the_next_reminder_and_the_ones_sent(
    client, world, django_capture_on_commit_callbacks
):
    patient = included_20_days_ago(world.bxp_patients[0])
    with django_capture_on_commit_callbacks(execute=True):
        sweep(paris(TODAY - timedelta(days=4)))
    client.force_login(world.alice)
    response = client.get(upcoming_url(world))
    (row,) = response.context["rows"]
    visit, days_left, pending, next_reminder, sent = row
    assert (visit.patient, visit.code, days_left, pending) == (patient, "M1", 17, None)
    assert next_reminder == VisitDue(Kind.WINDOW_OPENS, 0, TODAY + timedelta(days=3))
    assert [{k: item[k] for k in ("kind", "occurrence", "day", "statuses")} for item in sent] == [
        {
            "kind": Kind.WINDOW_OPENS,
            "occurrence": 7,
            "day": TODAY - timedelta(days=4),
            "statuses": [("sent", 2)],
        }
    ]
    body = response.content.decode()
    assert f"{short(TODAY + timedelta(days=3))} · window opens</td>" in body
    assert f"{short(TODAY - timedelta(days=4))} · window opens in 7 days" in body
    assert '<span class="badge text-bg-success">sent</span>' in body
    assert "×2" in body  # both Bordeaux recipients


def test_a_reminder_not_sent_shows_as_such_and_the_next_one_follows(client, world):
    """Bob has no email address: his copy is skipped; Alice's is still on its way (the
    outbox sends it once the sweep's transaction commits, which never happens here)."""
    included_20_days_ago(world.bxp_patients[0])
    User.objects.filter(pk=world.bob.pk).update(email="")
    sweep(paris(TODAY - timedelta(days=4)))
    client.force_login(world.alice)
    (row,) = client.get(upcoming_url(world)).context["rows"]
    assert row[4][0]["statuses"] == [("pending", 1), ("skipped", 1)]
    assert row[3].kind == Kind.WINDOW_OPENS and row[3].occurrence == 0


def test_a_reminder_already_recorded_today_is_not_the_next_one(client, world):
    """On the day the window opens, after 08:00: today's reminder went, the next one is
    the target day's."""
    patient = enrol(world.bxp_patients[0], TODAY - timedelta(days=23))  # M1 opens today
    sweep(paris(TODAY))
    client.force_login(world.alice)
    (row,) = client.get(upcoming_url(world)).context["rows"]
    assert row[0].patient == patient
    assert row[3] == VisitDue(Kind.BEFORE_TARGET, 0, TODAY + timedelta(days=7))


def test_upcoming_for_alice_shows_nothing_of_strasbourg(
    client, world, django_capture_on_commit_callbacks
):
    included_20_days_ago(world.bxp_patients[0])
    stras = included_20_days_ago(world.str_patients[0])
    with django_capture_on_commit_callbacks(execute=True):
        sweep(paris(TODAY - timedelta(days=4)))
    assert Reminder.objects.filter(patient=stras, recipient=world.charlie).exists()
    client.force_login(world.alice)
    response = client.get(upcoming_url(world))
    assert [row[0].patient.site.code for row in response.context["rows"]] == ["BXP"]
    body = response.content.decode()
    assert "STR-" not in body and "Strasbourg" not in body
    assert "charlie" not in body and world.charlie.get_full_name() not in body
    # Alice is no data manager: no link to the study's reminders log.
    assert reverse("reminders:log", args=[world.rct.code]) not in body


def test_upcoming_lists_due_and_overdue_visits_of_own_sites_only(client, world):
    overdue = enrol(world.bxp_patients[0], TODAY - timedelta(days=40))  # M1 closed
    due = enrol(world.bxp_patients[1], TODAY - timedelta(days=25))  # M1 open
    enrol(world.str_patients[0], TODAY - timedelta(days=25))
    client.force_login(world.alice)
    response = client.get(upcoming_url(world))
    rows = [(v.patient.subject_code, v.code, days) for v, days, *_ in response.context["rows"]]
    assert rows == [
        (overdue.subject_code, "M1", -3),
        (due.subject_code, "M1", 12),
    ]
    assert "STR-" not in response.content.decode()


def test_upcoming_is_paginated_most_urgent_first(client, world, monkeypatch):
    monkeypatch.setattr(reminder_views, "UPCOMING_PAGE_SIZE", 1)
    overdue = enrol(world.bxp_patients[0], TODAY - timedelta(days=40))
    due = enrol(world.bxp_patients[1], TODAY - timedelta(days=25))
    client.force_login(world.alice)
    url = upcoming_url(world)
    first, second = client.get(url), client.get(url, {"page": 2})
    assert [(v.patient.subject_code, d) for v, d, *_ in first.context["rows"]] == [
        (overdue.subject_code, -3)
    ]
    assert [(v.patient.subject_code, d) for v, d, *_ in second.context["rows"]] == [
        (due.subject_code, 12)
    ]
    assert "1 / 2" in first.content.decode() and "page=2" in first.content.decode()
    assert client.get(url, {"page": "junk"}).context["page"].number == 1


def test_upcoming_links_the_log_for_a_data_manager(client, world):
    client.force_login(world.diane)
    body = client.get(upcoming_url(world)).content.decode()
    assert reverse("reminders:log", args=[world.rct.code]) in body


# Session, user, the account's memberships (the second factor, whether the log is
# readable), study, the visits' count and page, their reminders (one query for all,
# recipients and emails joined).
UPCOMING_QUERIES = 7


@pytest.mark.parametrize("patients", [1, 20])
def test_upcoming_costs_the_same_queries_for_1_and_20_visits(
    client, world, django_assert_num_queries, django_capture_on_commit_callbacks, patients
):
    cohort = [world.bxp_patients[0]] + [
        PatientFactory(study=world.rct, site=world.bxp, created_by=world.alice)
        for _ in range(patients - 1)
    ]
    for patient in cohort:
        included_20_days_ago(patient)
    with django_capture_on_commit_callbacks(execute=True):
        sweep(paris(TODAY - timedelta(days=4)))
    assert Reminder.objects.count() == 2 * patients
    client.force_login(world.alice)
    with django_assert_num_queries(UPCOMING_QUERIES):
        response = client.get(upcoming_url(world))
    assert len(response.context["rows"]) == patients
    assert all(row[4] and row[3] for row in response.context["rows"])


# -- a person's settings ---------------------------------------------------------------------

SETTINGS_URL = "/profile/reminders/"


def preference_field(world, name: str) -> str:
    return f"s{world.rct.pk}-{name}"


def input_tag(body: str, name: str, value: str | None = None) -> str:
    """The <input> of that name (and value) in the page."""
    value_part = f'[^>]*value="{value}"' if value is not None else ""
    return re.search(rf'<input[^>]*name="{name}"{value_part}[^>]*>', body).group(0)


def test_the_settings_page_is_at_profile_reminders(world):
    assert reverse("reminders:settings") == SETTINGS_URL


def test_the_settings_page_shows_the_current_values(client, world):
    User.objects.filter(pk=world.alice.pk).update(language="en")
    ReminderPreference.objects.create(
        user=world.alice, study=world.rct, delivery=Delivery.DIGEST, visit_reminders=False
    )
    client.force_login(world.alice)
    response = client.get(SETTINGS_URL)
    assert response.status_code == 200
    assert response.context["language_form"].initial == {"language": "en"}
    ((study, form, received),) = response.context["studies"]
    assert study == world.rct
    assert form.initial == {"delivery": "digest", "visit_reminders": False}
    assert received == {"site"}
    body = response.content.decode()
    assert "checked" in input_tag(body, preference_field(world, "delivery"), "digest")
    assert "checked" not in input_tag(body, preference_field(world, "delivery"), "immediate")
    assert "checked" not in input_tag(body, preference_field(world, "visit_reminders"))
    assert '<option value="en" selected>' in body
    assert "alice@example.org" in body


def test_the_settings_page_defaults_without_a_stored_setting(client, world):
    client.force_login(world.bob)
    ((_study, form, _received),) = client.get(SETTINGS_URL).context["studies"]
    assert form.initial == {"delivery": "immediate", "visit_reminders": True}
    assert not ReminderPreference.objects.exists()  # reading stores nothing


def test_the_settings_page_says_what_each_role_receives(client, world):
    client.force_login(world.monica)
    body = client.get(SETTINGS_URL).content.decode()
    assert "Your role in this study receives no reminder" in body
    client.force_login(world.diane)
    response = client.get(SETTINGS_URL)
    assert [(s.code, r) for s, _f, r in response.context["studies"]] == [
        ("NCT00479934", {"sponsor"}),
        ("NCT04206644", {"sponsor"}),
    ]
    assert "you receive the SUSAR reminders of every site" in response.content.decode()


def test_saving_the_settings_goes_through_the_services_audited_and_sets_the_cookie(client, world):
    client.force_login(world.alice)
    assert world.alice.language == "fr"
    response = client.post(
        SETTINGS_URL,
        {"language": "en", preference_field(world, "delivery"): "digest"},  # box unticked
    )
    assert response.status_code == 302 and response.url == SETTINGS_URL
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert User.objects.get(pk=world.alice.pk).language == "en"
    preference = ReminderPreference.objects.get(user=world.alice, study=world.rct)
    assert (preference.delivery, preference.visit_reminders) == ("digest", False)

    (created,) = pghistory.models.Events.objects.tracks(preference)
    assert created.pgh_label == "insert"
    assert created.pgh_context["reason"] == "reminder settings changed by the user"
    assert created.pgh_context["user"] == world.alice.pk
    language = pghistory.models.Events.objects.tracks(world.alice).order_by("pgh_id").last()
    assert language.pgh_diff == {"language": ["fr", "en"]}
    assert language.pgh_context["reason"] == "language changed by the user"
    assert language.pgh_context["user"] == world.alice.pk

    page = client.get(SETTINGS_URL, HTTP_ACCEPT_LANGUAGE="fr")  # the cookie wins
    assert "Your reminder settings are saved." in page.content.decode()
    assert page.context["language_form"].initial == {"language": "en"}


def test_saving_again_unchanged_writes_no_event(client, world):
    client.force_login(world.alice)
    data = {"language": "fr", preference_field(world, "delivery"): "immediate"}
    data[preference_field(world, "visit_reminders")] = "on"
    client.post(SETTINGS_URL, data)
    preference = ReminderPreference.objects.get(user=world.alice, study=world.rct)
    before = pghistory.models.Events.objects.count()
    assert client.post(SETTINGS_URL, data).status_code == 302
    assert pghistory.models.Events.objects.count() == before
    assert ReminderPreference.objects.get(pk=preference.pk).visit_reminders is True


@pytest.mark.parametrize(
    ("field", "value"), [("delivery", "weekly"), ("delivery", ""), ("language", "de")]
)
def test_an_invalid_value_is_a_form_error_and_nothing_is_saved(client, world, field, value):
    client.force_login(world.alice)
    data = {"language": "en", preference_field(world, "delivery"): "digest", field: value}
    if field == "delivery":
        data[preference_field(world, "delivery")] = value
    before = pghistory.models.Events.objects.count()
    response = client.post(SETTINGS_URL, data)
    assert response.status_code == 200
    if field == "delivery":
        ((_study, form, _received),) = response.context["studies"]
    else:
        form = response.context["language_form"]
    assert list(form.errors) == [field]
    body = response.content.decode()
    assert "Nothing was saved: correct the values marked below." in body
    assert "is-invalid" in body
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    assert not ReminderPreference.objects.exists()
    assert User.objects.get(pk=world.alice.pk).language == "fr"
    assert pghistory.models.Events.objects.count() == before


def test_the_settings_page_needs_a_login(client):
    response = client.get(SETTINGS_URL)
    assert response.status_code == 302 and "login" in response.url


# -- the reminders log -----------------------------------------------------------------------


@pytest.fixture
def adele(world):
    """Administrator of the trial (all sites)."""
    user = UserFactory(username="adele")
    MembershipFactory(user=user, study=world.rct, site=None, role=Role.ADMIN)
    return user


@pytest.fixture
def logged(world, django_capture_on_commit_callbacks):
    """A reminder of each status, as the sweeps leave them:

    - 20 January (M1 of BXP-001 and STR-001 opens in 7 days): Charlie's email sent,
      Alice's failed for good (the mail server refused it), Bob's skipped (no address);
    - 21 January (BXP-002): Alice's email waiting in the outbox, then the visit took
      place: cancelled (Bob's skipped);
    - 22 January (BXP-003): Alice's email still waiting: pending (Bob's skipped).
    """
    bxp1, bxp2, bxp3 = (
        enrol(patient, date(2027, 1, 4) + timedelta(days=n))
        for n, patient in enumerate(world.bxp_patients)
    )
    enrol(world.str_patients[0])
    User.objects.filter(pk=world.bob.pk).update(email="")
    with django_capture_on_commit_callbacks(execute=True):
        sweep(paris(OPENS_IN_7))
    failed = Reminder.objects.get(patient=bxp1, recipient=world.alice)
    OutboundEmail.objects.filter(pk=failed.email_id).update(
        status=OutboundEmail.Status.FAILED,
        attempts=5,
        last_error="550 5.1.1 <alice@example.org>: mailbox unavailable",
        sent_at=None,
    )
    sweep(paris(OPENS_IN_7 + timedelta(days=1)))
    Visit.objects.filter(patient=bxp2, code="M1").update(
        visit_date=OPENS_IN_7 + timedelta(days=1), status=Visit.Status.IN_PROGRESS
    )
    sweep(paris(OPENS_IN_7 + timedelta(days=1), 8, 15))
    sweep(paris(OPENS_IN_7 + timedelta(days=2)))
    return {
        "sent": Reminder.objects.get(recipient=world.charlie),
        "failed": failed,
        "cancelled": Reminder.objects.get(patient=bxp2, recipient=world.alice),
        "pending": Reminder.objects.get(patient=bxp3, recipient=world.alice),
        "skipped": list(Reminder.objects.filter(recipient=world.bob).order_by("-due_at")),
    }


def listed(response) -> list[int]:
    return [reminder.pk for reminder in response.context["page"]]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("diane", 200),  # data manager, all sites
        ("adele", 200),  # administrator
        ("alice", 403),  # investigator
        ("bob", 403),  # coordinator
        ("monica", 403),  # monitor
        ("charlie", 403),  # investigator at another site
        ("rene", 404),  # another study only
    ],
)
def test_only_administrators_and_data_managers_read_the_log(
    client, world, adele, logged, name, expected
):
    user = adele if name == "adele" else getattr(world, name)
    client.force_login(user)
    assert client.get(log_url(world.rct)).status_code == expected
    assert client.get(detail_url(world.rct, logged["sent"])).status_code == expected


def test_the_log_lists_every_reminder_newest_first_with_the_counts(client, world, logged):
    client.force_login(world.diane)
    response = client.get(log_url(world.rct))
    assert response.status_code == 200
    assert response.context["counts"] == {
        "sent": 1,
        "pending": 1,
        "failed": 1,
        "cancelled": 1,
        "skipped": 3,
    }
    reminders = list(response.context["page"])
    assert len(reminders) == 7
    assert [r.due_at for r in reminders] == sorted((r.due_at for r in reminders), reverse=True)
    body = response.content.decode()
    for status in ("sent", "pending", "failed", "cancelled", "skipped"):
        assert f">{status}</span>" in body
    assert "The recipient has no email address." in body
    assert "550 5.1.1" in body
    assert "7 reminders" in body


@pytest.mark.parametrize("status", ["sent", "pending", "failed", "cancelled"])
def test_the_log_filters_by_status(client, world, logged, status):
    client.force_login(world.diane)
    response = client.get(log_url(world.rct, status=status))
    assert listed(response) == [logged[status].pk]
    assert response.context["page"][0].delivery_status == status
    # The button of the status chosen stands out.
    body = response.content.decode()
    assert f'class="btn btn-sm btn-secondary" href="?status={status}"' in body


def test_the_log_filters_the_skipped_ones(client, world, logged):
    client.force_login(world.diane)
    response = client.get(log_url(world.rct, status="skipped"))
    assert listed(response) == [r.pk for r in logged["skipped"]]
    assert {r.recipient for r in response.context["page"]} == {world.bob}


def test_the_log_filters_by_site_subject_and_day(client, world, logged):
    client.force_login(world.diane)
    assert listed(client.get(log_url(world.rct, site="STR"))) == [logged["sent"].pk]
    subject = logged["pending"].patient.subject_code
    assert set(listed(client.get(log_url(world.rct, subject=subject)))) == {
        logged["pending"].pk,
        logged["skipped"][0].pk,
    }
    day = OPENS_IN_7 + timedelta(days=1)
    in_range = client.get(log_url(world.rct, due_from=day.isoformat(), due_to=day.isoformat()))
    assert {r.due_on for r in in_range.context["page"]} == {day}
    assert len(listed(in_range)) == 2
    combined = client.get(log_url(world.rct, status="skipped", site="BXP", due_to=day))
    assert listed(combined) == [r.pk for r in logged["skipped"][1:]]


def test_the_log_filters_by_kind(client, world, logged):
    """3 February: BXP-001's M1 target day (its window opened on 27 January)."""
    sweep(paris(date(2027, 2, 3)))
    client.force_login(world.diane)
    response = client.get(log_url(world.rct, kind=Kind.BEFORE_TARGET))
    kinds = {(r.kind, r.patient.subject_code) for r in response.context["page"]}
    assert kinds == {
        (Kind.BEFORE_TARGET, logged["failed"].patient.subject_code),
        (Kind.BEFORE_TARGET, logged["sent"].patient.subject_code),  # Strasbourg's
    }
    assert len(listed(response)) == 3  # Alice, Bob and Charlie
    assert "Visit target day" in response.content.decode()
    everything = client.get(log_url(world.rct, kind=Kind.WINDOW_OPENS))
    assert len(listed(everything)) == 7


def test_a_filter_value_it_cannot_read_is_said_not_a_500(client, world, logged):
    client.force_login(world.diane)
    response = client.get(log_url(world.rct, site="XXX", due_from="tomorrow", status="lost"))
    assert response.status_code == 200
    assert set(response.context["filters"].errors) == {"site", "due_from", "status"}
    body = response.content.decode()
    assert "<div>Due from: Enter a valid date.</div>" in body
    assert "<div>Site: Select a valid choice." in body


def test_another_studys_sites_are_no_filter_choice(client, world, logged):
    client.force_login(world.diane)
    sites = response_sites(client.get(log_url(world.rct)))
    assert "BXP" in sites and "STR" in sites and "REN" not in sites


def response_sites(response) -> set[str]:
    return {site.code for site in response.context["filters"].form.fields["site"].queryset}


# Session, user, the account's memberships (whether the log is readable, the second
# factor), study, the status counts, the page's count and rows (recipient, site, patient,
# visit and email joined), the site choices; no session write (the login saved it).
LOG_QUERIES = 9


@pytest.mark.parametrize("extra", [0, 29])
def test_the_log_costs_the_same_queries_for_1_and_30_reminders(
    client, world, django_assert_num_queries, extra
):
    patient = enrol(world.bxp_patients[0])
    sweep(paris(OPENS_IN_7))
    Reminder.objects.filter(recipient=world.bob).delete()
    (first,) = Reminder.objects.all()
    patients = [PatientFactory(study=world.rct, site=world.bxp, created_by=world.alice)]
    for n in range(extra):
        email = OutboundEmail.objects.create(
            dedupe_key=f"reminder-extra:{n}",
            kind="reminder",
            recipients=["alice@example.org"],
            subject="S",
            body="B",
            status=OutboundEmail.Status.SENT if n % 2 else OutboundEmail.Status.FAILED,
        )
        Reminder.objects.create(
            kind=Kind.OVERDUE,
            object_id=first.visit_id,
            occurrence=n + 1,
            recipient=world.alice if n % 3 else world.bob,
            study=world.rct,
            site=world.bxp,
            patient=patient if n % 2 else patients[0],
            visit=first.visit,
            due_on=OPENS_IN_7 + timedelta(days=n),
            due_at=paris(OPENS_IN_7 + timedelta(days=n)),
            delivery=Delivery.IMMEDIATE,
            status=Reminder.Status.QUEUED,
            email=email,
        )
    client.force_login(world.diane)
    with django_assert_num_queries(LOG_QUERIES):
        response = client.get(log_url(world.rct))
    assert len(response.context["page"]) == 1 + extra


# -- one reminder ----------------------------------------------------------------------------


def test_the_detail_shows_the_email_sent(client, world, logged):
    client.force_login(world.diane)
    reminder = logged["sent"]
    response = client.get(detail_url(world.rct, reminder))
    assert response.status_code == 200
    body = response.content.decode()
    email = reminder.email
    assert email.status == "sent" and email.recipients == ["charlie@example.org"]
    assert escape(email.subject) in body
    code = reminder.patient.subject_code
    assert f"{code}\u00a0: la fenêtre de la visite M1 (" in email.body  # Charlie reads French
    assert f'data-testid="email-body">{escape(email.body.splitlines()[0])}' in body
    assert "Date cible\u00a0:" in body and "charlie@example.org" in body
    assert "20 January 2027, 08:00 (Europe/Paris) · 2027-01-20 07:00 UTC" in body


def test_the_detail_of_a_failed_email_gives_the_error(client, world, logged):
    client.force_login(world.diane)
    body = client.get(detail_url(world.rct, logged["failed"])).content.decode()
    assert '<span class="badge text-bg-danger">failed</span>' in body
    assert "550 5.1.1 &lt;alice@example.org&gt;: mailbox unavailable" in body
    assert "Attempts" in body and ">5" in body


def test_the_detail_of_a_skipped_reminder_says_why_and_that_no_email_went(client, world, logged):
    client.force_login(world.diane)
    body = client.get(detail_url(world.rct, logged["skipped"][0])).content.decode()
    assert "The recipient has no email address." in body
    assert "No email was written for this reminder." in body


def test_another_studys_reminder_is_not_found(client, world, logged):
    rennes = world.ren_patients[0]
    other = Reminder.objects.create(
        kind=Kind.SAE_DUE,
        object_id=1,
        occurrence=0,
        recipient=world.rene,
        study=world.cohort,
        site=world.ren,
        patient=rennes,
        due_on=OPENS_IN_7,
        due_at=paris(OPENS_IN_7),
        delivery=Delivery.IMMEDIATE,
        status=Reminder.Status.SKIPPED,
    )
    client.force_login(world.diane)  # data manager of both studies
    assert client.get(detail_url(world.rct, other)).status_code == 404
    assert client.get(detail_url(world.cohort, other)).status_code == 200
    assert other.pk not in listed(client.get(log_url(world.rct)))
    assert listed(client.get(log_url(world.cohort))) == [other.pk]
    assert client.get(reverse("reminders:detail", args=[world.rct.code, 999999])).status_code == (
        404
    )
