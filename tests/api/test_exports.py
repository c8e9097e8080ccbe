"""The API's export jobs, per persona: asked for through the export screen's own form and
service, polled, downloaded and recorded as on the screen; every refusal in its words, on
its field; another's job a 404."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from ecrf.accounts.models import Role
from ecrf.exports.models import ExportDownload, ExportJob
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

RCT = "NCT00479934"
EXPORTS = "/api/v1/exports/"


@pytest.fixture
def admin(world):
    """The trial's administrator, who sees the allocation."""
    user = UserFactory(username="adele")
    MembershipFactory(user=user, study=world.rct, site=None, role=Role.ADMIN, unblinded=True)
    return user


def post(client, body):
    return client.client.post(EXPORTS, json.dumps(body), content_type="application/json")


def ask(client, **body):
    return post(client, {"study": RCT, "formats": ["csv", "odm"], **body})


def done(client, capture, **body) -> dict:
    """A job asked for and run (its commit's task, eagerly); the job as the API shows it."""
    with capture(execute=True):
        response = ask(client, **body)
    assert response.status_code == 202, response.json()
    job = client.get(response["Location"]).json()
    assert job["status"] == "done", job["error"]
    return job


def queued_job(by, study) -> ExportJob:
    return ExportJob.objects.create(
        by=by, study=study, requested_at=timezone.now(), formats=["csv"]
    )


def zip_of(response) -> tuple[bytes, zipfile.ZipFile]:
    data = b"".join(response.streaming_content)
    return data, zipfile.ZipFile(io.BytesIO(data))


def test_a_data_manager_starts_polls_and_downloads_an_export(
    world, api, scr, export_storage, django_capture_on_commit_callbacks
):
    diane = api(world.diane)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = ask(diane, forms=["consent", "demographics"])
    assert response.status_code == 202, response.json()
    asked = response.json()
    job = ExportJob.objects.get()
    assert response["Location"] == f"http://testserver{EXPORTS}{job.pk}/"
    assert (job.by, job.study, job.formats, job.forms, job.sites, job.unblinded) == (
        world.diane, world.rct, ["csv", "odm"], ["consent", "demographics"], [], False,
    )  # fmt: skip
    assert asked["id"] == job.pk and asked["study"] == RCT and asked["by"] == "diane"
    assert (asked["status"], asked["download"]) == ("queued", None)
    assert asked["progress"] == {"status": "queued", "written": 0, "total": 0, "percent": 0}
    assert datetime.fromisoformat(asked["requested_at"]) == job.requested_at
    # Queued: polling says so, and there is nothing to download yet.
    assert diane.get(response["Location"]).json()["status"] == "queued"
    early = diane.get(f"{EXPORTS}{job.pk}/download/")
    assert early.status_code == 409
    assert early.json()["detail"].startswith(f"Export #{job.pk} is not written yet (Queued)")
    assert len(callbacks) == 1
    callbacks[0]()  # the commit's task, run eagerly
    polled = diane.get(response["Location"]).json()
    job.refresh_from_db()
    assert polled["status"] == "done" and job.total > 0
    total = job.total
    assert polled["progress"] == {
        "status": "done",
        "written": total,
        "total": total,
        "percent": 100,
    }
    assert polled["download"] == f"http://testserver{EXPORTS}{job.pk}/download/"
    assert polled["sha256"] == job.sha256 and polled["size"] == job.size
    # The zip, recorded as a download of Diane's, as on the screen.
    file = diane.get(polled["download"])
    assert file.status_code == 200
    assert file["Content-Type"] == "application/zip"
    name = job.file_name.rsplit("/", 1)[-1]
    assert file["Content-Disposition"] == f'attachment; filename="{name}"'
    assert "no-store" in file["Cache-Control"]
    data, archive = zip_of(file)
    assert hashlib.sha256(data).hexdigest() == job.sha256
    with archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        consent = archive.read("csv/consent.csv").decode()
    assert manifest["blinding"] == "BLINDED"
    assert {"csv/consent.csv", "csv/demographics.csv"} <= set(names)
    assert any(n.startswith("odm/") for n in names) and not any("mrss" in n for n in names)
    assert consent.startswith("subject_code,site,visit_code")
    assert f"{scr.patient.subject_code},BXP,SCR" in consent
    downloads = list(ExportDownload.objects.all())
    assert [(d.job, d.by, d.blinded, d.sha256) for d in downloads] == [
        (job, world.diane, True, job.sha256)
    ]
    event = ExportDownload.pgh_event_model.objects.get(pgh_obj_id=downloads[0].pk)
    assert event.pgh_context["via"] == "api"
    assert event.pgh_context["client"].startswith("API token test diane")
    assert event.pgh_context["reason"] == f"blinded export {job.pk} downloaded"


def test_the_list_is_the_users_jobs_in_cursor_pages_and_the_administrator_sees_them_all(
    world, api, admin
):
    mine = [queued_job(world.diane, world.rct) for _ in range(3)]
    theirs = queued_job(admin, world.rct)
    diane = api(world.diane)
    first = diane.get(EXPORTS, page_size=2).json()  # newest first, as on the screen
    assert [row["id"] for row in first["results"]] == [mine[2].pk, mine[1].pk]
    second = diane.client.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == [mine[0].pk]
    assert second["next"] is None
    assert second["results"][0]["progress"]["status"] == "queued"
    everyone = api(admin).get(EXPORTS).json()["results"]
    assert [row["id"] for row in everyone] == [theirs.pk, *(job.pk for job in reversed(mine))]
    assert [row["by"] for row in everyone] == ["adele", "diane", "diane", "diane"]
    for persona in ("alice", "charlie", "monica", "rene"):
        assert api(getattr(world, persona)).get(EXPORTS).json()["results"] == []


REFUSALS = [
    ({"formats": ["pdf"]}, "formats", "Format: pdf is not a known format; choose csv"),
    ({"formats": []}, "formats", "This field is required."),
    ({"formats": "csv"}, "formats", 'Expected a list of items but got type "str".'),
    ({"forms": ["nope"]}, "forms", "Form: nope is not a form this study exports; choose among"),
    ({"sites": ["REN"]}, "sites", "Site: REN does not take part in NCT00479934; choose among"),
    ({"as_of": "2027-01-20T10:00:00Z"}, "as_of", "is in the future; give an instant before now."),
    ({"as_of": "yesterday"}, "as_of", "Enter a valid date/time."),
    (
        {"audit_from": "2026-12-10T10:00:00Z", "audit_to": "2026-12-01T10:00:00Z"},
        "audit_to",
        # Shown in the site's zone, as the screen shows it.
        "Audit period: the end (2026-12-01T11:00:00+01:00) is before the start "
        "(2026-12-10T11:00:00+01:00)",
    ),
    ({"unblinded": True}, "unblinded", "Unblinded: you do not see the allocation of NCT00479934"),
    # An instant UTC cannot show: an invalid date, not a job whose page would fail.
    ({"as_of": "0001-01-01T00:30:00+01:00"}, "as_of", "Enter a valid date/time."),
    ({"sites": ["BXP", None]}, "sites", "Item 2: This field may not be null."),
]


@pytest.mark.parametrize(("body", "field", "message"), REFUSALS)
def test_a_refused_value_is_a_400_naming_its_field_in_the_screens_words(
    world, api, body, field, message
):
    response = ask(api(world.diane), **body)
    assert response.status_code == 400
    refusal = response.json()
    assert list(refusal["errors"]) == [field]
    assert message in refusal["errors"][field][0]
    assert refusal["detail"] == refusal["errors"][field][0]
    assert not ExportJob.objects.exists()


def test_a_cut_off_without_an_offset_is_read_in_the_sites_time_zone(
    world, api, export_storage, django_capture_on_commit_callbacks
):
    job = done(api(world.diane), django_capture_on_commit_callbacks, as_of="2026-12-01T10:00")
    assert datetime.fromisoformat(job["as_of"]) == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert ExportJob.objects.get().record.as_of == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_cut_off_with_an_offset_postgresql_does_not_store_is_the_same_instant(
    world, api, export_storage, django_capture_on_commit_callbacks
):
    # ISO 8601 allows +20:00; PostgreSQL stores offsets up to 15:59: kept in the site's zone.
    job = done(api(world.diane), django_capture_on_commit_callbacks, as_of="2026-12-01T10:00+20:00")
    assert datetime.fromisoformat(job["as_of"]) == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize("persona", ["alice", "bob", "charlie", "monica"])
def test_a_member_whose_role_may_not_export_is_a_403(world, api, persona):
    response = ask(api(getattr(world, persona)))
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Your role does not allow you to export data of this study.",
        "errors": {},
    }
    assert not ExportJob.objects.exists()


def test_a_study_one_is_not_a_member_of_is_a_404(world, api):
    assert ask(api(world.rene)).status_code == 404
    unknown = ask(api(world.diane), study="NCT99999999")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "Not found.", "errors": {}}
    assert not ExportJob.objects.exists()


def test_the_services_permission_refusal_is_a_403_not_a_field_error(world, api, monkeypatch):
    # The table refuses at the service (a role changed between the two checks).
    from ecrf.exports import forms as export_forms

    def refused(**asked):
        raise PermissionDenied("Your role does not allow you to export data here.")

    monkeypatch.setattr(export_forms, "export_prepare", refused)
    response = ask(api(world.diane))
    assert response.status_code == 403
    assert response.json()["detail"] == "Your role does not allow you to export data here."
    assert not ExportJob.objects.exists()


def test_another_users_job_is_a_404_and_its_zip_is_not_handed_out(
    world, api, scr, export_storage, django_capture_on_commit_callbacks, admin
):
    job = done(api(world.diane), django_capture_on_commit_callbacks, forms=["consent"])
    paths = [f"{EXPORTS}{job['id']}/", f"{EXPORTS}{job['id']}/download/"]
    for persona in ("alice", "charlie", "monica", "rene"):
        other = api(getattr(world, persona))
        for path in paths:
            response = other.get(path)
            assert response.status_code == 404
            assert response.json() == {"detail": "Not found.", "errors": {}}
    # The study's administrator sees it and may download it, as on the screen.
    adele = api(admin)
    assert adele.get(paths[0]).json()["by"] == "diane"
    assert adele.get(paths[1]).status_code == 200
    assert [(d.by, d.blinded) for d in ExportDownload.objects.all()] == [(admin, True)]


def test_a_job_not_written_yet_is_a_409_and_a_failed_one_a_410(world, api):
    diane = api(world.diane)
    job = queued_job(world.diane, world.rct)
    queued = diane.get(f"{EXPORTS}{job.pk}/download/")
    assert queued.status_code == 409
    assert queued.json() == {
        "detail": f"Export #{job.pk} is not written yet (Queued): poll it until its status "
        "is done, then download it.",
        "errors": {},
    }
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.RUNNING)
    running = diane.get(f"{EXPORTS}{job.pk}/download/")
    assert running.status_code == 409 and "(Running)" in running.json()["detail"]
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.FAILED, error="Refused.")
    failed = diane.get(f"{EXPORTS}{job.pk}/download/")
    assert failed.status_code == 410
    assert failed.json()["detail"] == f"Export #{job.pk} has no zip to download (Failed)."
    assert diane.get(f"{EXPORTS}{job.pk}/").json()["error"] == "Refused."
    assert not ExportDownload.objects.exists()


def test_an_expired_zip_is_a_410_and_no_download_is_recorded(
    world, api, scr, export_storage, django_capture_on_commit_callbacks, fixed_clock
):
    from ecrf.exports.jobs import exports_delete_expired

    diane = api(world.diane)
    job = done(diane, django_capture_on_commit_callbacks, forms=["consent"])
    fixed_clock.shift(timedelta(days=8))
    assert exports_delete_expired() == 1
    gone = diane.get(f"{EXPORTS}{job['id']}/download/")
    assert gone.status_code == 410
    assert "expired and was deleted" in gone.json()["detail"]
    assert diane.get(f"{EXPORTS}{job['id']}/").json()["download"] is None
    assert not ExportDownload.objects.exists()


def test_an_administrator_who_sees_the_allocation_exports_unblinded(
    world, api, scr, export_storage, django_capture_on_commit_callbacks, admin
):
    adele = api(admin)
    job = done(adele, django_capture_on_commit_callbacks, forms=["consent"], unblinded=True)
    assert job["unblinded"] is True
    _data, archive = zip_of(adele.get(job["download"]))
    with archive:
        assert json.loads(archive.read("manifest.json"))["blinding"] == "UNBLINDED"
    assert [(d.by, d.blinded) for d in ExportDownload.objects.all()] == [(admin, False)]


def test_an_accept_header_asking_for_the_zip_gets_it_or_a_json_refusal(
    world, api, scr, export_storage, django_capture_on_commit_callbacks
):
    diane = api(world.diane)
    job = done(diane, django_capture_on_commit_callbacks, forms=["consent"], formats=["csv"])
    file = diane.client.get(job["download"], HTTP_ACCEPT="application/zip")
    assert file.status_code == 200 and file["Content-Type"] == "application/zip"
    waiting = queued_job(world.diane, world.rct)
    refused = diane.client.get(f"{EXPORTS}{waiting.pk}/download/", HTTP_ACCEPT="application/zip")
    assert refused.status_code == 409 and refused["Content-Type"] == "application/json"
    assert refused.json()["detail"].startswith(f"Export #{waiting.pk} is not written yet")
