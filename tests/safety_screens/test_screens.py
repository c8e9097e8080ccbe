"""The safety screens: recording, the SAE workflow through the web, lists, tampered posts."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail
from django.urls import reverse
from django.utils import timezone

from ecrf.notifications.models import OutboundEmail
from ecrf.safety.models import AdverseEvent, SaeReport
from tests.factories import PASSWORD, LabAlertFactory, SafetyLabsFactory
from tests.safety_screens.helpers import form_data, serious


def log_url(patient, suffix=""):
    return reverse("safety:log", args=[patient.study.code, patient.subject_code]) + suffix


def event_url(event, name="event", *extra):
    patient = event.patient
    return reverse(
        f"safety:{name}", args=[patient.study.code, patient.subject_code, event.number, *extra]
    )


def test_investigator_records_an_adverse_event_through_the_form(client, world, bxp_patient):
    client.force_login(world.alice)
    response = client.post(log_url(bxp_patient, "new/"), form_data(term="Headache"))
    event = AdverseEvent.objects.get(patient=bxp_patient)
    assert response.status_code == 302
    assert response["Location"] == event_url(event)
    assert (event.number, event.term, event.serious, event.ongoing) == (1, "Headache", False, True)
    assert not SaeReport.objects.exists()
    page = client.get(log_url(bxp_patient)).content.decode()
    assert "AE-001" in page and "Headache" in page


def test_serious_event_from_the_form_starts_the_clock_from_site_time(client, world, bxp_patient):
    client.force_login(world.alice)
    aware = timezone.localtime() - timedelta(hours=3)
    data = form_data(
        term="Pneumonia",
        ctcae_grade="3",
        serious="yes",
        sae_hospitalisation="on",
        aware_date=aware.date().isoformat(),
        aware_time=aware.strftime("%H:%M"),
    )
    client.post(log_url(bxp_patient, "new/"), data)
    report = SaeReport.objects.get(adverse_event__patient=bxp_patient)
    expected_aware = aware.replace(second=0, microsecond=0)
    assert report.aware_at == expected_aware
    assert report.due_at - report.aware_at == timedelta(hours=24)
    page = client.get(event_url(report.adverse_event)).content.decode()
    assert "Initial report due" in page and "Submit to the sponsor" in page


def test_bad_answers_name_the_fields_and_save_nothing(client, world, bxp_patient):
    client.force_login(world.alice)
    data = form_data(
        onset_date="2026-13",
        ctcae_grade="5",
        serious="no",
        sae_hospitalisation="on",
        outcome="recovered",
    )
    response = client.post(log_url(bxp_patient, "new/"), data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "YYYY-MM" in errors["onset_date"][0]
    assert "fatal" in errors["outcome"][0]
    assert "death" in errors["death_date"][0]
    assert AdverseEvent.objects.count() == 0


def test_criterion_posted_with_a_non_serious_event_is_dropped(client, world, bxp_patient):
    # The form hides the criteria of a non-serious event and drops one that a crafted POST
    # sends anyway: the event is saved non-serious and without the criterion, never as a
    # non-serious SAE (the service, called directly, refuses such a criterion).
    client.force_login(world.alice)
    response = client.post(log_url(bxp_patient, "new/"), form_data(serious="no", sae_death="on"))
    assert response.status_code == 302  # the hidden criterion is cleared, not stored
    event = AdverseEvent.objects.get()
    assert (event.serious, event.sae_death) == (False, False)


def test_monitor_and_another_site_cannot_record(client, world, bxp_patient):
    client.force_login(world.monica)
    assert client.post(log_url(bxp_patient, "new/"), form_data()).status_code == 403
    client.force_login(world.charlie)
    assert client.post(log_url(bxp_patient, "new/"), form_data()).status_code == 404
    assert AdverseEvent.objects.count() == 0


def test_another_sites_event_is_404_on_every_screen(client, world, bxp_patient, record):
    event = record(bxp_patient, world.alice, **serious())
    client.force_login(world.charlie)
    for url in (
        log_url(bxp_patient),
        log_url(bxp_patient, "new/"),
        event_url(event),
        event_url(event, "edit"),
    ):
        assert client.get(url).status_code == 404, url
    for name in ("submit", "follow_up", "authority"):
        assert client.post(event_url(event, name), {"password": PASSWORD}).status_code == 404
    assert client.post(event_url(event, "acknowledge", 0)).status_code == 404
    for list_url in ("safety:ae_list", "safety:sae_list"):
        page = client.get(reverse(list_url, args=[world.rct.code])).content.decode()
        assert bxp_patient.subject_code not in page and "Pneumonia" not in page
    # Filtering by the other site's code is an invalid choice, not a count of its events.
    response = client.get(reverse("safety:ae_list", args=[world.rct.code]), {"site": "BXP"})
    assert "Pneumonia" not in response.content.decode()
    assert "site" in response.context["filter"].errors


def test_initial_report_submitted_with_password_notifies_once(
    client, world, bxp_patient, record, django_capture_on_commit_callbacks
):
    event = record(bxp_patient, world.alice, **serious())
    client.force_login(world.alice)
    wrong = client.post(event_url(event, "submit"), {"password": "nope", "narrative": "x"})
    assert wrong.status_code == 400
    assert "password" in wrong.context["initial_form"].errors
    assert SaeReport.objects.get().submitted_at is None and not mail.outbox

    with django_capture_on_commit_callbacks(execute=True):
        ok = client.post(
            event_url(event, "submit"), {"password": PASSWORD, "narrative": "Admitted."}
        )
    assert ok.status_code == 302
    report = SaeReport.objects.get()
    assert report.submitted_by == world.alice and report.narrative == "Admitted."
    assert len(mail.outbox) == 1 and "Initial SAE report" in mail.outbox[0].subject
    again = client.post(event_url(event, "submit"), {"password": PASSWORD})
    assert again.status_code == 400
    assert len(mail.outbox) == 1 and OutboundEmail.objects.count() == 1


def test_coordinator_records_but_does_not_submit(client, world, bxp_patient, record):
    event = record(bxp_patient, world.bob, **serious())
    client.force_login(world.bob)
    assert client.post(event_url(event, "submit"), {"password": PASSWORD}).status_code == 403
    assert SaeReport.objects.get().submitted_at is None


def test_follow_up_for_a_non_serious_event_is_400(client, world, bxp_patient, record):
    event = record(bxp_patient, world.alice)
    client.force_login(world.alice)
    response = client.post(
        event_url(event, "follow_up"),
        {"password": PASSWORD, "narrative": "news", **_now_fields()},
    )
    assert response.status_code == 400
    assert "serious adverse event only" in response.content.decode()
    assert not SaeReport.objects.exists()
    submit = client.post(event_url(event, "submit"), {"password": PASSWORD})
    assert submit.status_code == 400


def _now_fields():
    now = timezone.localtime()
    return {"aware_date": now.date().isoformat(), "aware_time": now.strftime("%H:%M")}


def test_follow_up_through_the_web_lists_the_changes(
    client, world, bxp_patient, record, django_capture_on_commit_callbacks
):
    event = record(bxp_patient, world.alice, **serious())
    client.force_login(world.alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(event_url(event, "submit"), {"password": PASSWORD})
    edit = form_data(
        term="Pneumonia",
        ctcae_grade="4",
        serious="yes",
        sae_hospitalisation="on",
        sae_life_threatening="on",
        version=str(event.version),
        reason="ICU admission",
        onset_date=event.onset_date,
    )
    local_aware = timezone.localtime(event.aware_at)
    edit["aware_date"], edit["aware_time"] = (
        local_aware.date().isoformat(),
        local_aware.strftime("%H:%M"),
    )
    assert client.post(event_url(event, "edit"), edit).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            event_url(event, "follow_up"),
            {"password": PASSWORD, "narrative": "Transferred to ICU.", **_now_fields()},
        )
    assert response.status_code == 302
    follow_up = SaeReport.objects.get(number=1)
    changed = {c["field"]: (c["old"], c["new"]) for c in follow_up.changes}
    assert changed["ctcae_grade"] == (3, 4)
    assert changed["sae_life_threatening"] == (False, True)
    assert len(mail.outbox) == 2 and "follow-up report 1" in mail.outbox[1].subject
    page = client.get(event_url(event)).content.decode()
    assert "follow-up 1" in page and "ICU" in page


def test_stale_edit_is_409_and_keeps_the_other_save(client, world, bxp_patient, record):
    event = record(bxp_patient, world.alice)
    AdverseEvent.objects.filter(pk=event.pk).update(version=2, term="Vomiting")
    client.force_login(world.alice)
    data = form_data(version="1", reason="typo", term="Nausea grade 2")
    response = client.post(event_url(event, "edit"), data)
    assert response.status_code == 409
    assert AdverseEvent.objects.get().term == "Vomiting"


def test_edit_without_reason_is_refused(client, world, bxp_patient, record):
    event = record(bxp_patient, world.alice)
    client.force_login(world.alice)
    response = client.post(event_url(event, "edit"), form_data(version="1", term="Other"))
    assert response.status_code == 400
    assert "reason" in response.context["form"].errors
    assert AdverseEvent.objects.get().term == "Nausea"


def test_sponsor_acknowledges_and_the_susar_clock_shows(client, world, bxp_patient, record):
    event = record(bxp_patient, world.alice, **serious(expected=False, relatedness="probable"))
    client.force_login(world.alice)
    client.post(event_url(event, "submit"), {"password": PASSWORD})
    assert client.post(event_url(event, "acknowledge", 0)).status_code == 403
    client.force_login(world.diane)
    response = client.post(event_url(event, "acknowledge", 0), {"sponsor_relatedness": ""})
    assert response.status_code == 302
    report = SaeReport.objects.get()
    assert report.acknowledged_by == world.diane
    page = client.get(reverse("safety:sae_list", args=[world.rct.code])).content.decode()
    assert "SUSAR" in page
    due = timezone.localtime(report.acknowledged_at + timedelta(days=15)).date().isoformat()
    assert f"15 d → {due}" in page


def test_sae_list_shows_overdue_and_due_soon(client, world, bxp_patient, record):
    late = record(
        bxp_patient, world.alice, **serious(aware_at=timezone.now() - timedelta(hours=30))
    )
    record(bxp_patient, world.alice, **serious(term="Sepsis"))
    client.force_login(world.diane)
    response = client.get(reverse("safety:sae_list", args=[world.rct.code]))
    rows = {row.event.term: row for row in response.context["rows"]}
    assert rows["Pneumonia"].overdue and not rows["Sepsis"].overdue
    assert rows["Sepsis"].time_left > timedelta(hours=21)
    assert late.label in response.content.decode()
    assert response.content.decode().count('data-testid="overdue"') == 1


def test_lists_filter_by_grade_seriousness_relatedness(client, world, bxp_patient, record):
    record(bxp_patient, world.alice, term="Rash", ctcae_grade=1, relatedness="not_related")
    record(bxp_patient, world.alice, **serious(relatedness="definite"))
    client.force_login(world.alice)
    url = reverse("safety:ae_list", args=[world.rct.code])

    def terms(**query):
        return [e.term for e in client.get(url, query).context["page"]]

    assert sorted(terms()) == ["Pneumonia", "Rash"]
    assert terms(grade="1") == ["Rash"]
    assert terms(serious="yes") == ["Pneumonia"]
    assert terms(relatedness="related") == ["Pneumonia"]
    assert terms(relatedness="not_related") == ["Rash"]


def test_ae_list_query_count_does_not_grow_with_rows(
    client, world, bxp_patient, record, django_assert_num_queries
):
    client.force_login(world.diane)
    url = reverse("safety:ae_list", args=[world.rct.code])
    record(bxp_patient, world.alice)
    # The account's memberships are read once a request (every role the page asks about,
    # the second factor's included); the session's expiry is pushed at most once a minute,
    # and not on the first page after the login, which saved it.
    with django_assert_num_queries(8):
        client.get(url)
    for _ in range(9):
        record(bxp_patient, world.alice, **serious())
    with django_assert_num_queries(8):
        assert len(client.get(url).context["page"]) == 10


def test_sae_list_query_count_does_not_grow_with_rows(
    client, world, bxp_patient, record, django_assert_num_queries
):
    client.force_login(world.diane)
    url = reverse("safety:sae_list", args=[world.rct.code])
    record(bxp_patient, world.alice, **serious())
    with django_assert_num_queries(8):
        client.get(url)
    for _ in range(9):
        record(bxp_patient, world.alice, **serious())
    with django_assert_num_queries(8):
        assert len(client.get(url).context["rows"]) == 10


def test_lab_prompt_dismissed_with_reason_from_the_log(client, world, bxp_patient):
    from ecrf.patients.models import Visit

    visit = Visit.objects.get(patient=bxp_patient, code="SCR")
    labs = SafetyLabsFactory(visit=visit, entered_by=world.alice, hemoglobin_g_dl=12)
    alert = LabAlertFactory(labs=labs, analyte="platelets_x10e9_l", value=40, limit="< 50")
    client.force_login(world.alice)
    page = client.get(log_url(bxp_patient)).content.decode()
    # The analyte as the form names it, not its column.
    assert "Platelets (×10⁹/L)" in page and "&lt; 50" in page
    assert "platelets_x10e9_l" not in page
    url = log_url(bxp_patient, f"lab-alerts/{alert.pk}/dismiss/")
    assert client.post(url, {"reason": ""}).status_code == 400
    assert client.post(url, {"reason": "Clumping, recount normal"}).status_code == 302
    alert.refresh_from_db()
    assert (alert.status, alert.dismiss_reason) == ("dismissed", "Clumping, recount normal")
    create = client.get(log_url(bxp_patient, "new/"), {"alert": alert.pk})
    assert create.status_code == 404  # not open any more


def test_casebook_lists_the_events(client, world, bxp_patient, record):
    record(bxp_patient, world.alice, **serious())
    client.force_login(world.alice)
    page = client.get(
        reverse("patients:detail", args=[world.rct.code, bxp_patient.subject_code])
    ).content.decode()
    assert 'data-testid="casebook-ae"' in page
    assert "AE-001" in page and "report not submitted" in page


def test_a_study_without_an_ae_log_shows_none(client, world):
    """Sclero-JAK's protocol collects no adverse_event form: no log, no casebook card."""
    patient = world.ren_patients[0]
    client.force_login(world.rene)
    assert client.get(log_url(patient)).status_code == 404
    assert client.get(log_url(patient, "new/")).status_code == 404
    page = client.get(reverse("patients:detail", args=[world.cohort.code, patient.subject_code]))
    assert page.status_code == 200
    assert 'data-testid="casebook-ae"' not in page.content.decode()
