"""The API's reads and writes, per persona: what each may see, the 404 across sites, the
blinded arm, the cursor pages, the incremental pull, the save and its refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ecrf.accounts.models import Membership
from ecrf.crfs.models import Mrss
from ecrf.patients.models import Allocation, AllocationList, FormIndexEntry
from ecrf.scoring import mrss as mrss_scoring

pytestmark = pytest.mark.django_db

V1 = "/api/v1/studies/"


def codes(response, key="subject_code"):
    return sorted(row[key] for row in response.json()["results"])


def test_each_persona_lists_the_studies_and_sites_they_belong_to(world, api):
    assert codes(api(world.alice).get(V1), "code") == [world.rct.code]
    assert codes(api(world.rene).get(V1), "code") == [world.cohort.code]
    assert codes(api(world.diane).get(V1), "code") == sorted([world.rct.code, world.cohort.code])
    assert codes(api(world.alice).get(f"{V1}{world.rct.code}/sites/"), "code") == ["BXP"]
    every = codes(api(world.diane).get(f"{V1}{world.rct.code}/sites/"), "code")
    assert {"BXP", "STR"} <= set(every)
    refused = api(world.rene).get(f"{V1}{world.rct.code}/")
    assert refused.status_code == 404
    assert set(refused.json()) == {"detail", "errors"}


def test_patients_are_those_of_the_persona_s_sites_and_another_site_s_is_a_404(world, api, scr):
    bxp = sorted([scr.patient.subject_code, *(p.subject_code for p in world.bxp_patients)])
    str_ = sorted(p.subject_code for p in world.str_patients)
    path = f"{V1}{world.rct.code}/patients/"
    assert codes(api(world.alice).get(path)) == bxp
    assert codes(api(world.charlie).get(path)) == str_
    assert codes(api(world.diane).get(path)) == sorted(bxp + str_)
    assert codes(api(world.diane).get(path, site="STR")) == str_
    assert api(world.alice).get(f"{path}{str_[0]}/").status_code == 404
    mine = api(world.alice).get(f"{path}{scr.patient.subject_code}/").json()
    assert (mine["site"], mine["status"]) == ("BXP", "screening")
    assert [(v["code"], v["status"]) for v in mine["visits"]][:1] == [("SCR", "in_progress")]
    assert mine["visits"][0]["visit_date"] == scr.visit_date.isoformat()
    bad = api(world.alice).get(path, status="nonsense")
    assert bad.status_code == 400
    assert "status" in bad.json()["errors"]


def test_a_blinded_user_never_gets_the_arm_an_unblinded_one_does(world, api):
    patient = world.bxp_patients[0]
    allocations = AllocationList.objects.create(
        study=world.rct,
        site=world.bxp,
        source=AllocationList.Source.GENERATED,
        seed=1,
        block_sizes=[2],
        created_by=world.diane,
    )
    Allocation.objects.create(
        allocation_list=allocations, study=world.rct, site=world.bxp, sequence=1,
        block_number=1, block_size=2, arm="IMATINIB", kit_number="K-1", patient=patient,
        allocated_at=timezone.now(), allocated_by=world.alice,
    )  # fmt: skip
    path = f"{V1}{world.rct.code}/patients/"
    blinded = api(world.alice)
    row = next(r for r in blinded.get(path).json()["results"] if r["kit_number"] == "K-1")
    assert "arm" not in row
    assert "arm" not in blinded.get(f"{path}{patient.subject_code}/").json()
    assert b"IMATINIB" not in blinded.get(f"{path}{patient.subject_code}/").content
    Membership.objects.filter(user=world.diane, study=world.rct).update(unblinded=True)
    unblinded = api(world.diane).get(f"{path}{patient.subject_code}/").json()
    assert (unblinded["kit_number"], unblinded["arm"]) == ("K-1", "IMATINIB")


def test_the_protocol_gives_visits_windows_forms_and_fields(world, api):
    body = api(world.alice).get(f"{V1}{world.rct.code}/protocol/").json()
    visits = {v["code"]: v for v in body["visits"]}
    assert {"SCR", "M0", "M1", "M3", "M6", "M12"} <= set(visits)
    assert visits["M3"]["earliest_day"] < visits["M3"]["target_day"] < visits["M3"]["latest_day"]
    assert "mrss" in [f["form"] for f in visits["M3"]["forms"]]
    mrss = next(f for f in body["forms"] if f["code"] == "mrss")
    face = next(f for f in mrss["fields"] if f["name"] == "face")
    assert face["type"] == "integer"
    assert [c["value"] for c in face["choices"]] == [0, 1, 2, 3]
    assert face["required"] is True


# -- form data -----------------------------------------------------------------------------


def form_path(visit, form="mrss"):
    patient = visit.patient
    return (
        f"{V1}{patient.study.code}/patients/{patient.subject_code}/visits/{visit.code}/"
        f"{visit.repeat}/forms/{form}/"
    )


AREAS = dict.fromkeys(mrss_scoring.AREAS, 1)


def test_a_form_is_saved_read_and_corrected_through_the_service(world, api, scr):
    alice = api(world.alice)
    path = form_path(scr)
    assert alice.get(path).status_code == 404  # not saved yet
    created = alice.put(path, {"values": {**AREAS, "assessor": "Dr Martin"}})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["version"], body["derived"]["total"]) == (1, 17)
    assert body["values"]["assessor"] == "Dr Martin"
    assert alice.get(path).json() == body
    # A change needs the reason, named by its label.
    refused = alice.put(path, {"version": 1, "values": {"face": 3}})
    assert refused.status_code == 400
    assert refused.json()["errors"]["reason"]
    assert Mrss.objects.get(visit=scr).face == 1  # nothing half saved
    corrected = alice.put(
        path, {"version": 1, "reason": "Re-read on the examination sheet", "values": {"face": 3}}
    )
    assert corrected.status_code == 200
    assert (corrected.json()["version"], corrected.json()["derived"]["total"]) == (2, 19)
    event = Mrss.pgh_event_model.objects.filter(pgh_obj_id=body["id"]).latest("pgh_id")
    assert event.pgh_context["via"] == "api"
    assert event.pgh_context["client"].startswith("API token test alice")
    assert event.pgh_context["reason"] == "Re-read on the examination sheet"
    assert event.pgh_context["user"] == world.alice.pk


def test_a_stale_version_is_a_409_with_the_form_as_it_is_and_what_was_sent(world, api, scr):
    alice = api(world.alice)
    path = form_path(scr)
    alice.put(path, {"values": AREAS})
    alice.put(path, {"version": 1, "reason": "Re-read on the sheet", "values": {"face": 2}})
    stale = alice.put(path, {"version": 1, "reason": "Re-read on the sheet", "values": {"face": 0}})
    assert stale.status_code == 409
    body = stale.json()
    assert body["current"]["version"] == 2
    assert body["current"]["values"]["face"] == 2
    assert body["yours"] == {"version": 1, "values": {"face": 0}}
    assert "version 1" in body["detail"]
    assert Mrss.objects.get(visit=scr).face == 2


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"face": "abc"}, "face", "Face: give a whole number."),
        ({"face": 7}, "face", None),
        (
            {"exam_date": "yesterday"},
            "exam_date",
            "Date of examination: give a date as YYYY-MM-DD.",
        ),
        ({"bogus": 1}, "non_field_errors", "Not fields of this form: bogus."),
        ({"total": 3}, "non_field_errors", "Not fields of this form: total."),
    ],
)
def test_bad_values_are_refused_naming_the_field_and_nothing_is_saved(
    world, api, scr, values, field, message
):
    response = api(world.alice).put(form_path(scr), {"values": values})
    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    assert field in errors
    if message:
        assert errors[field] == [message]
    assert not Mrss.objects.filter(visit=scr).exists()


def test_malformed_bodies_and_unknown_places_are_refused_without_a_500(world, api, scr):
    alice = api(world.alice)
    assert alice.put(form_path(scr), "{not json").status_code == 400
    assert alice.put(form_path(scr), {"values": "face=1"}).status_code == 400
    assert alice.put(form_path(scr), {"values": AREAS, "version": -1}).status_code == 400
    assert alice.put(form_path(scr, "nonsense"), {"values": {}}).status_code == 404
    assert alice.put(form_path(scr, "dlqi"), {"values": {}}).status_code == 404  # not at SCR
    other = api(world.charlie).put(form_path(scr), {"values": AREAS})
    assert other.status_code == 404
    assert not Mrss.objects.filter(visit=scr).exists()


def test_a_monitor_reads_the_form_but_may_not_enter_it(world, api, scr):
    api(world.alice).put(form_path(scr), {"values": AREAS})
    monitor = api(world.monica)
    assert monitor.get(form_path(scr)).json()["derived"]["total"] == 17
    refused = monitor.put(
        form_path(scr), {"version": 1, "reason": "Monitor's own correction", "values": {"face": 0}}
    )
    assert refused.status_code == 403
    assert refused.json()["detail"]
    assert Mrss.objects.get(visit=scr).face == 1


def test_the_incremental_pull_gives_what_changed_since(world, api, scr, fixed_clock):
    alice = api(world.alice)
    alice.put(form_path(scr), {"values": AREAS})
    fixed_clock.shift(timedelta(hours=1))
    since = timezone.now()
    path = f"{V1}{world.rct.code}/forms/mrss/"
    assert alice.get(path, updated_since=since.isoformat()).json()["results"] == []
    fixed_clock.shift(timedelta(minutes=5))
    alice.put(
        form_path(scr), {"version": 1, "reason": "Re-read on the sheet", "values": {"face": 2}}
    )
    pulled = alice.get(path, updated_since=since.isoformat()).json()["results"]
    assert [(r["patient"], r["version"]) for r in pulled] == [(scr.patient.subject_code, 2)]
    assert api(world.charlie).get(path).json()["results"] == []  # another site's
    bad = alice.get(path, updated_since="last tuesday")
    assert bad.status_code == 400
    assert "updated_since" in bad.json()["errors"]


def test_a_few_thousand_forms_page_by_cursor_at_a_constant_cost(world, api):
    from scripts.bench_exports import patients_generate
    from tests.factories import UserFactory

    UserFactory(username="investigator.bordeaux")
    UserFactory(username="admin")
    patients_generate(world.rct, 400)  # every form of six visits, spread over the sites
    expected = Mrss.objects.filter(patient__study=world.rct).count()
    assert expected > 2000
    diane = api(world.diane)
    diane.get(V1)  # the token's first call of the minute records its use
    path, params, seen, costs = f"{V1}{world.rct.code}/forms/mrss/", {"page_size": 500}, [], []
    while path:
        with CaptureQueriesContext(connection) as queries:
            page = diane.client.get(path, params).json()
        costs.append(len(queries))
        seen += [row["id"] for row in page["results"]]
        path, params = page["next"], None
    assert len(seen) == len(set(seen)) == expected
    assert seen == sorted(seen)
    assert len(costs) >= 5 and len(set(costs)) == 1, costs
    # An investigator pages through their own site's only.
    bxp = Mrss.objects.filter(patient__study=world.rct, patient__site=world.bxp).count()
    alice, path, count = api(world.alice), f"{V1}{world.rct.code}/forms/mrss/", 0
    params = {"page_size": 1000}
    while path:
        page = alice.client.get(path, params).json()
        count += len(page["results"])
        assert {row["site"] for row in page["results"]} <= {"BXP"}
        path, params = page["next"], None
    assert count == bxp


def test_junk_is_refused_in_json_never_a_500(world, api, scr):
    alice = api(world.alice)
    crafted = alice.get(f"{V1}{world.rct.code}/forms/mrss/", cursor="cD1hYmM=")  # p=abc
    assert crafted.status_code == 404
    assert crafted.json()["detail"] == "Invalid cursor"
    nul = alice.put(form_path(scr), {"values": {**AREAS, "assessor": "Dr\x00Martin"}})
    assert nul.status_code == 400
    assert nul.json()["detail"] == "values.assessor: no control character is allowed."
    assert not Mrss.objects.filter(visit=scr).exists()
    for path in (f"{V1}{world.rct.code}/queries/-1/", "/api/v2/", f"{V1}nowhere/at/all/"):
        response = alice.get(path)
        assert (response.status_code, response["Content-Type"]) == (404, "application/json")
        assert response.json()["errors"] == {}
    junk = alice.get(f"{V1}{world.rct.code}/patients/", site="B\x01XP")
    assert (junk.status_code, junk["Content-Type"]) == (400, "application/json")
    assert "control character" in junk.json()["detail"]


def test_a_refused_item_of_a_list_is_named_by_its_place(world, api, scr):
    response = api(world.alice).put(
        form_path(scr), {"values": AREAS, "confirmed_warnings": ["ok", "x" * 65]}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "confirmed_warnings": ["Item 2: Ensure this field has no more than 64 characters."]
    }


# Each list: the token, the account's memberships (the second factor's roles and every
# scope after), the study, then the page's own: the rows, and what they carry.
@pytest.mark.parametrize(
    ("path", "queries"),
    [
        ("", 3),
        ("patients/", 4),  # the rows with their site and allocation
        ("forms/consent/", 5),  # the protocol version (is it one of its forms?), the rows
        ("adverse-events/", 5),  # the rows, their SAE reports
        ("queries/", 6),  # the rows, their messages, who wrote them
        ("sdv/", 4),
    ],
)
def test_list_pages_pin_their_query_counts(
    world, api, scr, django_assert_num_queries, path, queries
):
    from ecrf.review.queries import query_raise
    from ecrf.safety.services.adverse_events import ae_create
    from tests.safety.conftest import ae_values

    entry = FormIndexEntry.objects.get(patient=scr.patient, form_code="consent")
    query_raise(by=world.monica, entry=entry, text="Please check the consent date.")
    ae_create(patient=scr.patient, by=world.alice, values=ae_values(
        onset_date=str(scr.visit_date), end_date=None, ongoing=True,
        aware_at=timezone.now(),
    ))  # fmt: skip
    alice = api(world.alice)
    alice.get(V1)  # the token's first call of the minute records its use
    with django_assert_num_queries(queries):
        response = alice.get(f"{V1}{world.rct.code}/{path}")
    body = response.json()
    assert body["results"] if path else body["code"] == world.rct.code  # rows to carry
