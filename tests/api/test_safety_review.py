"""Adverse events, SAE reports, queries, SDV and signatures through the API: the safety and
review services behind it, each persona's sites only."""

from __future__ import annotations

import json

import pytest

from ecrf.patients.models import FormIndexEntry
from ecrf.review.queries import query_raise
from ecrf.safety.models import AdverseEvent, SaeReport
from tests.safety.conftest import ae_values

pytestmark = pytest.mark.django_db

V1 = "/api/v1/studies/"


def as_json(values: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()}


@pytest.fixture
def patient(world):
    from ecrf.patients.services import patient_create
    from tests.safety.conftest import CONSENT_DAY, consent

    return consent(
        patient_create(study=world.rct, site=world.bxp, by=world.alice, screening_date=CONSENT_DAY),
        by=world.alice,
    )


def log(patient):
    return f"{V1}{patient.study.code}/patients/{patient.subject_code}/adverse-events/"


def test_an_adverse_event_is_recorded_read_and_changed_with_its_reason(world, api, patient):
    alice = api(world.alice)
    created = alice.client.post(
        log(patient), json.dumps({"values": as_json(ae_values())}), content_type="application/json"
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["number"], body["version"], body["values"]["term"]) == (1, 1, "Nausea")
    assert body["values"]["aware_at"] == "2026-10-02T09:00:00+00:00"
    event = AdverseEvent.objects.get(patient=patient)
    assert event.pgh_event_model.objects.get(pgh_obj_id=event.pk).pgh_context["via"] == "api"
    path = f"{log(patient)}1/"
    no_reason = alice.put(path, {"version": 1, "values": {"ctcae_grade": 2}})
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["errors"]
    changed = alice.put(
        path,
        {"version": 1, "reason": "Grade re-assessed at the visit", "values": {"ctcae_grade": 2}},
    )
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["version"], changed.json()["values"]["ctcae_grade"]) == (2, 2)
    assert changed.json()["values"]["term"] == "Nausea"  # what was not sent stays
    stale = alice.put(path, {"version": 1, "reason": "Grade re-assessed again", "values": {}})
    assert stale.status_code == 409
    assert stale.json()["current"]["version"] == 2
    assert [e["number"] for e in alice.get(log(patient)).json()] == [1]
    assert alice.get(f"{V1}{world.rct.code}/adverse-events/").json()["results"][0]["number"] == 1


def test_a_serious_event_gets_its_sae_report_and_another_site_sees_nothing(world, api, patient):
    alice = api(world.alice)
    serious = ae_values(serious=True, sae_hospitalisation=True, ctcae_grade=3)
    assert alice.client.post(
        log(patient), json.dumps({"values": as_json(serious)}), content_type="application/json"
    ).status_code == 201  # fmt: skip
    reports = alice.get(f"{V1}{world.rct.code}/sae-reports/").json()["results"]
    assert [(r["patient"], r["adverse_event"], r["number"]) for r in reports] == [
        (patient.subject_code, 1, SaeReport.objects.get().number)
    ]
    assert reports[0]["submitted_at"] is None
    charlie = api(world.charlie)
    assert charlie.get(f"{V1}{world.rct.code}/sae-reports/").json()["results"] == []
    assert charlie.get(f"{V1}{world.rct.code}/adverse-events/").json()["results"] == []
    assert charlie.get(f"{log(patient)}1/").status_code == 404
    refused = charlie.client.post(
        log(patient), json.dumps({"values": as_json(ae_values())}), content_type="application/json"
    )
    assert refused.status_code == 404
    assert AdverseEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"ctcae_grade": "severe"}, "ctcae_grade"),
        ({"aware_at": "2026-10-02T09:00:00"}, "aware_at"),  # no offset: which zone?
        ({"serious": "yes"}, "serious"),
        ({"colour": "red"}, "non_field_errors"),
        ({"term": ""}, "term"),
    ],
)
def test_bad_adverse_event_values_are_refused_naming_the_field(world, api, patient, values, field):
    response = api(world.alice).client.post(
        log(patient),
        json.dumps({"values": {**as_json(ae_values()), **values}}),
        content_type="application/json",
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert not AdverseEvent.objects.exists()


def test_a_monitor_reads_the_log_but_may_not_record(world, api, patient):
    monitor = api(world.monica)
    response = monitor.client.post(
        log(patient), json.dumps({"values": as_json(ae_values())}), content_type="application/json"
    )
    assert response.status_code == 403
    assert monitor.get(log(patient)).json() == []


def test_the_site_answers_a_query_and_reads_its_thread(world, api, patient):
    entry = FormIndexEntry.objects.get(patient=patient, form_code="consent")
    query = query_raise(by=world.monica, entry=entry, text="Please check the consent date.")
    alice = api(world.alice)
    listed = alice.get(f"{V1}{world.rct.code}/queries/", status="open").json()["results"]
    assert [(q["id"], q["form"], q["messages"][0]["text"]) for q in listed] == [
        (query.pk, "consent", "Please check the consent date.")
    ]
    path = f"{V1}{world.rct.code}/queries/{query.pk}/answer/"
    assert alice.client.post(path, {}, content_type="application/json").status_code == 400
    answered = alice.client.post(
        path, json.dumps({"text": "Checked against the signed form: correct."}),
        content_type="application/json",
    )  # fmt: skip
    assert answered.status_code == 200, answered.json()
    assert answered.json()["status"] == "answered"
    assert [m["kind"] for m in answered.json()["messages"]] == ["raise", "answer"]
    monitor = api(world.monica)
    assert monitor.client.post(
        path, json.dumps({"text": "A monitor may not answer."}), content_type="application/json"
    ).status_code == 403  # fmt: skip
    assert api(world.charlie).get(f"{V1}{world.rct.code}/queries/{query.pk}/").status_code == 404
    bad = alice.get(f"{V1}{world.rct.code}/queries/", status="nonsense")
    assert bad.status_code == 400 and "status" in bad.json()["errors"]


def test_sdv_and_signatures_are_read_at_one_s_sites(world, api, patient):
    sdv = api(world.monica).get(f"{V1}{world.rct.code}/sdv/").json()["results"]
    consent = next(r for r in sdv if r["form"] == "consent")
    assert (consent["patient"], consent["verified"], consent["version"]) == (
        patient.subject_code, False, 1,
    )  # fmt: skip
    assert api(world.charlie).get(f"{V1}{world.rct.code}/sdv/").json()["results"] == []
    assert api(world.alice).get(f"{V1}{world.rct.code}/signatures/").json()["results"] == []


def test_the_sae_report_is_submitted_with_the_password_then_followed_up(world, api, patient):
    from ecrf.audit.models import AuthEvent
    from ecrf.notifications.models import OutboundEmail
    from tests.factories import PASSWORD

    alice = api(world.alice)
    serious = ae_values(serious=True, sae_hospitalisation=True, ctcae_grade=3)
    alice.client.post(
        log(patient), json.dumps({"values": as_json(serious)}), content_type="application/json"
    )
    path = f"{log(patient)}1/sae-reports/"
    wrong = alice.client.post(
        path, json.dumps({"password": "not my password"}), content_type="application/json"
    )
    assert wrong.status_code == 400
    assert "password" in wrong.json()["errors"]
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.REAUTH_FAILED, user=world.alice).exists()
    assert SaeReport.objects.get().submitted_at is None
    sent = alice.client.post(
        path, json.dumps({"password": PASSWORD, "narrative": "Admitted for dehydration."}),
        content_type="application/json",
    )  # fmt: skip
    assert sent.status_code == 201, sent.json()
    assert (sent.json()["number"], sent.json()["narrative"]) == (0, "Admitted for dehydration.")
    assert sent.json()["submitted_at"] is not None
    assert OutboundEmail.objects.filter(kind="sae_report").exists()
    follow = alice.client.post(
        path, json.dumps({"password": PASSWORD, "narrative": "Discharged home."}),
        content_type="application/json",
    )  # fmt: skip
    assert (follow.status_code, follow.json()["number"]) == (201, 1)
    assert api(world.monica).client.post(
        path, json.dumps({"password": PASSWORD, "narrative": "x"}), content_type="application/json"
    ).status_code == 403  # fmt: skip
