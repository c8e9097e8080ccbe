"""The edit screen of an event that becomes serious later asks when the site became aware
of the seriousness, and the clock on every screen starts there."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone

from ecrf.safety.models import AdverseEvent, SaeReport
from tests.safety_screens.helpers import form_data

QUESTION = "When did the site become aware that the event is serious?"


def event_url(event, name="event"):
    patient = event.patient
    return reverse(f"safety:{name}", args=[patient.study.code, patient.subject_code, event.number])


def known_five_days_ago(record, patient, by):
    today = timezone.localdate()
    return record(
        patient,
        by,
        onset_date=(today - timedelta(days=6)).isoformat(),
        aware_at=(timezone.now() - timedelta(days=5)).replace(second=0, microsecond=0),
    )


def edit_data(event, **overrides) -> dict:
    """The edit form's POST for `event` as it stands, turned serious (hospitalisation)."""
    aware = timezone.localtime(event.aware_at)
    data = form_data(
        term=event.term,
        onset_date=event.onset_date,
        ctcae_grade="3",
        relatedness=event.relatedness,
        aware_date=aware.date().isoformat(),
        aware_time=aware.strftime("%H:%M"),
        serious="yes",
        sae_hospitalisation="on",
        version=str(event.version),
        reason="Admitted to hospital",
    )
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_edit_screen_of_a_non_serious_event_asks_when_it_became_serious(
    client, world, bxp_patient, record
):
    event = known_five_days_ago(record, bxp_patient, world.alice)
    client.force_login(world.alice)
    response = client.get(event_url(event, "edit"))
    form = response.context["form"]
    assert form.fields["serious_aware_date"].label == QUESTION
    page = response.content.decode()
    assert QUESTION in page
    # Shown only once "serious" is answered yes, and prefilled with now in site time.
    assert 'name="serious_aware_date"' in page and 'data-show-if="serious=yes"' in page
    now = timezone.localtime()  # Europe/Paris, the site's zone
    assert form["serious_aware_date"].value() == now.date()
    shown = datetime.strptime(form["serious_aware_time"].value(), "%H:%M").time()
    offset = datetime.combine(now.date(), shown) - now.replace(tzinfo=None, second=0, microsecond=0)
    assert abs(offset) <= timedelta(minutes=1)


def test_event_known_five_days_ago_turned_serious_through_the_form_is_not_overdue(
    client, world, bxp_patient, record
):
    event = known_five_days_ago(record, bxp_patient, world.alice)
    aware = event.aware_at
    client.force_login(world.alice)
    serious_aware = timezone.localtime() - timedelta(minutes=20)
    data = edit_data(
        event,
        serious_aware_date=serious_aware.date().isoformat(),
        serious_aware_time=serious_aware.strftime("%H:%M"),
    )
    response = client.post(event_url(event, "edit"), data)
    assert response.status_code == 302, response.context["form"].errors
    started = serious_aware.replace(second=0, microsecond=0)
    report = SaeReport.objects.get(adverse_event=event)
    assert (report.aware_at, report.due_at) == (started, started + timedelta(hours=24))
    page = client.get(event_url(event)).content.decode()
    assert 'data-testid="overdue"' not in page
    assert "Due in 23 h" in page
    event.refresh_from_db()
    assert event.aware_at == aware
    assert event.serious_aware_at == started
    assert "Site aware of the seriousness at" in page
    assert started.strftime("%Y-%m-%d %H:%M") in page

    client.force_login(world.diane)
    sae_list = client.get(reverse("safety:sae_list", args=[world.rct.code]))
    (row,) = sae_list.context["rows"]
    assert not row.overdue
    listed = sae_list.content.decode()
    assert 'data-testid="overdue"' not in listed
    known = timezone.localtime(aware).strftime("%Y-%m-%d %H:%M")
    assert f"event known since {known}" in listed
    ae_list = client.get(reverse("safety:ae_list", args=[world.rct.code])).content.decode()
    assert "overdue" not in ae_list


def test_turning_serious_with_the_question_left_empty_is_refused(
    client, world, bxp_patient, record
):
    event = known_five_days_ago(record, bxp_patient, world.alice)
    client.force_login(world.alice)
    response = client.post(
        event_url(event, "edit"), edit_data(event, serious_aware_date="", serious_aware_time="")
    )
    assert response.status_code == 400
    assert response.context["form"].errors["serious_aware_date"] == [
        "Give the date and time the site became aware that the event is serious."
    ]
    event.refresh_from_db()
    assert (event.serious, event.version) == (False, 1)
    assert not SaeReport.objects.exists()


def test_seriousness_known_before_the_event_or_in_the_future_is_refused(
    client, world, bxp_patient, record
):
    event = known_five_days_ago(record, bxp_patient, world.alice)
    client.force_login(world.alice)
    before = timezone.localtime(event.aware_at) - timedelta(hours=1)
    response = client.post(
        event_url(event, "edit"),
        edit_data(
            event,
            serious_aware_date=before.date().isoformat(),
            serious_aware_time=before.strftime("%H:%M"),
        ),
    )
    assert response.status_code == 400
    (message,) = response.context["form"].errors["serious_aware_date"]
    assert "before it became aware of the event" in message
    later = timezone.localtime() + timedelta(hours=2)
    response = client.post(
        event_url(event, "edit"),
        edit_data(
            event,
            serious_aware_date=later.date().isoformat(),
            serious_aware_time=later.strftime("%H:%M"),
        ),
    )
    assert response.status_code == 400
    assert "cannot be in the future" in response.context["form"].errors["serious_aware_date"][0]
    assert AdverseEvent.objects.get().serious is False


def test_a_date_without_its_time_is_refused(client, world, bxp_patient, record):
    event = known_five_days_ago(record, bxp_patient, world.alice)
    client.force_login(world.alice)
    response = client.post(
        event_url(event, "edit"),
        edit_data(
            event,
            serious_aware_date=timezone.localdate().isoformat(),
            serious_aware_time="",
        ),
    )
    assert response.status_code == 400
    assert response.context["form"].errors["serious_aware_time"] == [
        "Give both the date and the time."
    ]


def test_event_recorded_serious_through_the_form_is_serious_from_its_awareness(
    client, world, bxp_patient
):
    client.force_login(world.alice)
    new = reverse("safety:create", args=[world.rct.code, bxp_patient.subject_code])
    page = client.get(new)
    assert page.context["form"]["serious_aware_date"].value() in (None, "")
    data = form_data(term="Pneumonia", ctcae_grade="3", serious="yes", sae_hospitalisation="on")
    assert client.post(new, data).status_code == 302
    event = AdverseEvent.objects.get()
    assert event.serious_aware_at == event.aware_at
    # Its edit screen leaves the question empty: the same moment as the awareness.
    edit = client.get(event_url(event, "edit")).context["form"]
    assert edit["serious_aware_date"].value() in (None, "")


def test_non_serious_answer_drops_a_hidden_awareness_of_seriousness(
    client, world, bxp_patient, record
):
    # The edit screen prefills the hidden question; answering "not serious" sends it anyway.
    event = known_five_days_ago(record, bxp_patient, world.alice)
    client.force_login(world.alice)
    now = timezone.localtime()
    data = edit_data(
        event,
        serious="no",
        sae_hospitalisation=None,
        ctcae_grade="2",
        serious_aware_date=now.date().isoformat(),
        serious_aware_time=now.strftime("%H:%M"),
        reason="Grade corrected",
    )
    assert client.post(event_url(event, "edit"), data).status_code == 302
    event.refresh_from_db()
    assert (event.serious, event.serious_aware_at, event.version) == (False, None, 2)
