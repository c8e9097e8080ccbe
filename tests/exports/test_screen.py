"""The export screen, persona by persona: who may open it, what it offers, every refusal on
its field with what was typed kept, the job it queues and the zip its task writes, the
list, the downloads (the asker and administrators; a 404 to anyone else) and expiry."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
import zoneinfo
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format

from ecrf.accounts import permissions
from ecrf.accounts.models import Role
from ecrf.accounts.permissions import Action
from ecrf.exports.forms import LocalDateTimeField
from ecrf.exports.jobs import exports_delete_expired
from ecrf.exports.models import ExportDownload, ExportJob, ExportRecord
from ecrf.exports.services import FORMATS, PLANNED_FORMATS
from ecrf.studies.models import Site

RCT = "NCT00479934"
NEW = reverse("exports:new")
LIST = reverse("exports:list")


def user(username):
    return get_user_model().objects.get(username=username)


@pytest.fixture
def people(seeded, world):
    """The personas (alice, bob, charlie, monica, diane, rene) beside the demo's users
    (`datamanager`, and `admin`, the studies' administrator who sees the allocation)."""
    world.datamanager = user("datamanager")
    world.admin = user("admin")
    return world


def login(client, person):
    """A session for `person`, reading English (the personas' own language is French)."""
    client.force_login(person)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def submit(client, study=RCT, **fields):
    data = {"study": study, "formats": ["csv"], **fields}
    return client.post(NEW, data)


@pytest.mark.parametrize("persona", ["alice", "bob", "charlie", "monica", "rene"])
def test_site_staff_monitors_and_other_studies_may_not_export(client, people, persona):
    login(client, getattr(people, persona))
    response = client.get(NEW)
    assert response.status_code == 403
    assert 'data-testid="menu-exports"' not in text(client.get(reverse("studies:chooser")))
    # Their list is empty and offers no new export.
    listing = text(client.get(LIST))
    assert "No export yet." in listing and 'data-testid="new-export"' not in listing


def test_the_screen_offers_what_the_data_manager_may_choose(client, people):
    login(client, people.diane)
    assert 'data-testid="menu-exports"' in text(client.get(reverse("studies:chooser")))
    response = client.get(NEW, {"study": RCT})
    assert response.status_code == 200
    page = text(response)
    for fmt in FORMATS:
        assert f'value="{fmt}" id="id_formats_{fmt}"' in page
    for fmt in PLANNED_FORMATS:  # offered, not yet choosable
        assert re.search(rf'value="{fmt}" id="id_formats_{fmt}" disabled', page)
        assert f'data-testid="not-yet-{fmt}"' in page
    form = response.context["form"]
    codes = sorted(
        Site.objects.filter(study_sites__study=people.rct).values_list("code", flat=True)
    )
    assert [code for code, _label in form.fields["sites"].choices] == codes
    labels = dict(form.fields["forms"].choices)
    assert "Rodnan" in labels["mrss"] and "adverse_event" in labels
    # Diane does not see the allocation: no unblinded choice.
    assert 'name="unblinded"' not in page and 'name="initials"' in page
    # Both of her studies can be chosen.
    assert {s.code for s in response.context["studies"]} == {RCT, people.cohort.code}


def test_the_administrator_who_sees_the_allocation_is_offered_an_unblinded_export(client, people):
    login(client, people.admin)
    page = text(client.get(NEW, {"study": RCT}))
    assert 'name="unblinded"' in page


def test_another_study_is_a_404_and_a_study_without_the_right_a_403(client, people):
    login(client, people.diane)
    assert client.get(NEW, {"study": "NCT99999999"}).status_code == 404
    login(client, people.alice)
    assert client.get(NEW, {"study": RCT}).status_code == 403


REFUSALS = [
    ({"formats": []}, "formats", "This field is required."),
    ({"formats": ["pdf"]}, "formats", "Format: pdf is not a known format; choose"),
    ({"forms": ["nope"]}, "forms", "Form: nope is not a form this study exports; choose among"),
    ({"sites": ["REN"]}, "sites", "Site: REN does not take part in NCT00479934; choose among"),
    ({"as_of": "2027-01-20T10:00"}, "as_of", "is in the future; give an instant before now."),
    ({"as_of": "yesterday"}, "as_of", "Enter a valid date/time."),
    (
        {"audit_from": "2026-12-10T10:00", "audit_to": "2026-12-01T10:00"},
        "audit_to",
        "Audit period: the end",
    ),
    ({"unblinded": "on"}, "unblinded", "Unblinded: you do not see the allocation of NCT00479934"),
]


@pytest.mark.parametrize(("fields", "field", "message"), REFUSALS)
def test_a_refusal_is_shown_on_its_field_and_what_was_typed_is_kept(
    client, people, fields, field, message
):
    login(client, people.diane)
    typed = {"forms": ["mrss"], "audit_from": "2026-12-01T08:30", **fields}
    response = submit(client, **typed)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message in errors[field][0]
    page = text(response)
    assert f'data-testid="error-{field}">' in page
    # What was typed is shown again.
    for name, value in typed.items():
        for one in value if isinstance(value, list) else [value]:
            if name in ("as_of", "audit_from", "audit_to"):
                assert f'name="{name}" id="id_{name}" value="{one[:16]}"' in page
            elif name in ("forms", "sites") and one in {
                c for c, _l in response.context["form"].fields[name].choices
            }:
                assert re.search(rf'name="{name}" value="{one}" id="[^"]+" checked', page)
    assert not ExportJob.objects.exists()


def test_a_planned_format_is_refused_as_not_yet_supported(client, people):
    login(client, people.diane)
    for fmt in PLANNED_FORMATS[:1]:  # none once every writer is built
        response = submit(client, formats=[fmt])
        assert response.status_code == 400
        assert "is not supported yet; choose" in response.context["form"].errors["formats"][0]


def test_a_cut_off_is_typed_in_the_sites_time_zone():
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    field = LocalDateTimeField(zone=paris, required=False)
    assert field.clean("2026-07-01T10:00") == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    assert field.clean("2026-12-01T10:00") == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert field.clean("") is None


def test_someone_who_exports_at_one_site_only_is_refused_another_by_name(
    client,
    people,
    monkeypatch,
    export_storage,
    django_capture_on_commit_callbacks,
):
    # Should the table ever let a site's role export, the screen keeps to that site.
    table = dict(permissions.PERMISSIONS)
    table[Action.EXPORT] = table[Action.EXPORT] | {Role.INVESTIGATOR}
    monkeypatch.setattr(permissions, "PERMISSIONS", MappingProxyType(table))
    login(client, people.alice)
    response = client.get(NEW, {"study": RCT})
    assert [code for code, _l in response.context["form"].fields["sites"].choices] == ["BXP"]
    refused = submit(client, sites=["STR"], forms=["mrss"])
    assert refused.status_code == 400
    assert refused.context["form"].errors["sites"] == [
        "Site: you may not export STR's data; choose among BXP."
    ]
    assert not ExportJob.objects.exists()
    # Without a site ticked: her own, not every site.
    with django_capture_on_commit_callbacks(execute=True):
        accepted = submit(client, forms=["mrss"])
    job = ExportJob.objects.get()
    assert accepted.status_code == 302 and job.sites == ["BXP"]
    job.refresh_from_db()
    assert job.status == ExportJob.Status.DONE and job.record.sites == ["BXP"]


def test_a_valid_submit_queues_the_job_and_its_page_follows_it(
    client,
    people,
    export_storage,
    django_capture_on_commit_callbacks,
):
    login(client, people.datamanager)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = submit(client, forms=["mrss", "demographics"], initials="on")
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "exports:job", args=[job.pk]
    )
    assert (job.by, job.study, job.status, job.formats) == (
        people.datamanager,
        people.rct,
        ExportJob.Status.QUEUED,
        ["csv"],
    )
    assert (job.forms, job.sites, job.initials, job.unblinded) == (
        ["mrss", "demographics"],
        [],
        True,
        False,
    )
    # Queued: the page shows it waiting, the endpoint says so.
    page = text(client.get(response["Location"]))
    assert "Waiting for a worker" in page and 'max="100" value="0"' in page
    progress = client.get(reverse("exports:progress", args=[job.pk]))
    assert progress.json() == {"status": "queued", "written": 0, "total": 0, "percent": 0}
    assert len(callbacks) == 1
    callbacks[0]()  # the commit's task, run eagerly
    job.refresh_from_db()
    assert job.status == ExportJob.Status.DONE
    state = client.get(reverse("exports:progress", args=[job.pk])).json()
    assert state == {"status": "done", "written": job.total, "total": job.total, "percent": 100}
    assert job.total > 0
    page = text(client.get(response["Location"]))
    assert f"{job.total} rows written out of {job.total} (100 %)" in page
    assert 'data-testid="download"' in page and job.sha256 in page
    assert '<script src="/static/exports/progress.js">' in page


def _done_job(client, person, django_capture_on_commit_callbacks, **fields) -> ExportJob:
    login(client, person)
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(client, **{"forms": ["mrss"], **fields})
    assert response.status_code == 302
    job = ExportJob.objects.latest("pk")
    assert job.status == ExportJob.Status.DONE, job.error
    return job


def test_the_zip_is_downloaded_by_the_asker_and_an_administrator_only(
    client,
    people,
    export_storage,
    django_capture_on_commit_callbacks,
):
    job = _done_job(client, people.datamanager, django_capture_on_commit_callbacks)
    url = reverse("exports:download", args=[job.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert job.file_name.rsplit("/", 1)[-1] in response["Content-Disposition"]
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == job.sha256
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["blinding"] == "BLINDED"
        assert archive.read("csv/mrss.csv").startswith(b"subject_code,site,visit_code")
    login(client, people.admin)
    assert client.get(url).status_code == 200
    # Anyone else: no such export (another data manager of the study included).
    for other in (people.diane, people.monica, people.alice, people.charlie, people.rene):
        login(client, other)
        for name in ("download", "job", "progress"):
            assert client.get(reverse(f"exports:{name}", args=[job.pk])).status_code == 404
    downloads = ExportDownload.objects.order_by("pk")
    assert [(d.by, d.blinded, d.sha256) for d in downloads] == [
        (people.datamanager, True, job.sha256),
        (people.admin, True, job.sha256),
    ]
    # The job page lists them.
    login(client, people.datamanager)
    assert text(client.get(reverse("exports:job", args=[job.pk]))).count("<li>") >= 2


def test_an_expired_export_says_so_and_is_not_a_500(
    client,
    people,
    export_storage,
    django_capture_on_commit_callbacks,
    fixed_clock,
):
    job = _done_job(client, people.datamanager, django_capture_on_commit_callbacks)
    fixed_clock.shift(timedelta(days=8))
    assert exports_delete_expired() == 1
    login(client, people.datamanager)  # the session expired meanwhile
    response = client.get(reverse("exports:download", args=[job.pk]))
    assert response.status_code == 410
    assert "expired and was deleted" in text(response)
    assert not ExportDownload.objects.exists()
    page = text(client.get(reverse("exports:job", args=[job.pk])))
    assert 'data-testid="job-expired"' in page
    listing = text(client.get(LIST))
    assert "Expired" in listing and f'data-testid="download-{job.pk}"' not in listing


def test_the_list_shows_size_expiry_blinding_and_the_administrator_sees_every_export(
    client,
    people,
    export_storage,
    django_capture_on_commit_callbacks,
):
    mine = _done_job(client, people.datamanager, django_capture_on_commit_callbacks)
    unblinded = _done_job(client, people.admin, django_capture_on_commit_callbacks, unblinded="on")
    login(client, people.datamanager)
    listing = text(client.get(LIST))
    assert f'data-testid="export-{mine.pk}"' in listing
    assert f'data-testid="export-{unblinded.pk}"' not in listing
    login(client, people.admin)
    response = client.get(LIST)
    listing = text(response)
    assert f'data-testid="export-{mine.pk}"' in listing and "UNBLINDED" in listing
    row = re.search(rf'data-testid="export-{mine.pk}">(.*?)</tr>', listing).group(1)
    assert "blinded" in row and re.search(r'data-testid="size">[\d.,]+ (KB|bytes)<', row)
    with translation.override("en"):
        expires = date_format(timezone.localtime(mine.expires_at), "SHORT_DATE_FORMAT")
    assert f'data-testid="expires">{expires}<' in row
    assert f'data-testid="download-{mine.pk}"' in row


def _jobs(person, study, count):
    """Finished jobs as the task leaves them, without running exports."""
    now = timezone.now()
    for number in range(count):
        record = ExportRecord.objects.create(
            by=person, at=now, study=study, formats=["csv"], manifest_sha256="0" * 64
        )
        ExportJob.objects.create(
            by=person,
            study=study,
            requested_at=now - timedelta(minutes=number),
            formats=["csv"],
            status=ExportJob.Status.DONE,
            record=record,
            file_name=f"{study.code}/x{number}.zip",
            size=1234 * (number + 1),
            sha256="1" * 64,
            expires_at=now + timedelta(days=7),
        )


# The session and the user, the account's memberships (the second factor, whether they
# may export), the jobs' count and page, the studies the user administers (the download
# rule, once for the page); no session write (the login saved it).
LIST_QUERIES = 7


@pytest.mark.parametrize("count", [1, 30])
def test_the_list_page_costs_the_same_queries_for_one_or_many_exports(
    client, people, django_assert_num_queries, count
):
    _jobs(people.datamanager, people.rct, count)
    login(client, people.admin)
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get(LIST)
    assert len(response.context["rows"]) == min(count, 25)


def test_a_refusal_of_the_permission_table_is_a_message_and_nothing_is_queued(
    client, people, monkeypatch
):
    # The table refuses at the service (a role changed between the page and the submit).
    from ecrf.exports import forms as export_forms

    def refused(**asked):
        raise PermissionDenied("Your role does not allow you to export data here.")

    monkeypatch.setattr(export_forms, "export_prepare", refused)
    login(client, people.diane)
    response = submit(client, forms=["mrss"], audit_from="2026-12-01T08:30")
    assert response.status_code == 400
    page = text(response)
    assert 'class="alert alert-danger" role="alert">Your role does not allow you to export' in page
    assert 'name="audit_from" id="id_audit_from" value="2026-12-01T08:30"' in page
    assert re.search(r'name="forms" value="mrss" id="[^"]+" checked', page)
    assert not ExportJob.objects.exists()


def test_a_failed_job_shows_its_message_and_has_nothing_to_download(
    client, people, export_storage, django_capture_on_commit_callbacks, monkeypatch
):
    from ecrf.exports import jobs

    def broken(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(jobs, "_zip_folder", broken)
    login(client, people.datamanager)
    with django_capture_on_commit_callbacks(execute=True):
        submit(client, forms=["mrss"])
    job = ExportJob.objects.get()
    assert job.status == ExportJob.Status.FAILED
    page = text(client.get(reverse("exports:job", args=[job.pk])))
    assert 'data-testid="job-error">The export failed on an unexpected error' in page
    assert "No space left" not in page and 'data-testid="download"' not in page
    gone = client.get(reverse("exports:download", args=[job.pk]))
    assert gone.status_code == 410
    assert f"Export #{job.pk} has no zip to download (Failed)." in text(gone)
