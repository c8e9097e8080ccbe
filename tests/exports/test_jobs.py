"""The export screen's jobs as services (ecrf/exports/jobs.py): queued on commit, written by
the task (eager here) into a zip in the exports storage, downloaded and audited, expired by
the beat task. A real worker runs one in test_worker.py."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, timedelta

import pandas
import pghistory.models
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.utils import timezone, translation

from ecrf.accounts.models import Membership
from ecrf.crfs.models import Mrss
from ecrf.exports import jobs
from ecrf.exports.jobs import (
    ExportGone,
    export_download,
    export_job_create,
    export_job_run,
    exports_delete_expired,
)
from ecrf.exports.models import ExportDownload, ExportJob, ExportRecord
from ecrf.exports.services import export_prepare
from ecrf.exports.tasks import delete_expired_exports, requeue_exports
from ecrf.studies.models import Study

RCT = "NCT00479934"


def user(username):
    return get_user_model().objects.get(username=username)


@pytest.fixture
def rct(seeded):
    return Study.objects.get(code=RCT)


def run_job(by, study, django_capture_on_commit_callbacks, **asked) -> ExportJob:
    """Ask for an export as the screen does and let its task run (eagerly) on commit."""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = export_job_create(request=export_prepare(study=study, by=by, **asked))
    assert len(callbacks) == 1
    job.refresh_from_db()
    return job


def unzip(storage_dir, job) -> dict[str, bytes]:
    with zipfile.ZipFile(storage_dir / job.file_name) as archive:
        assert archive.testzip() is None
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_job_is_queued_on_commit_and_its_task_writes_a_blinded_zip(
    rct, export_storage, django_capture_on_commit_callbacks
):
    diane = user("datamanager")
    job = run_job(diane, rct, django_capture_on_commit_callbacks, forms=["mrss", "demographics"])
    assert job.status == ExportJob.Status.DONE
    assert (job.by, job.study, job.formats, job.forms, job.unblinded) == (
        diane,
        rct,
        ["csv"],
        ["mrss", "demographics"],
        False,
    )
    # Named after the study, the UTC instant and the blinding, never an arm.
    name = job.file_name.rsplit("/", 1)[-1]
    assert name.startswith(f"{RCT}_") and name.endswith(f"_BLINDED_{job.pk}.zip")
    assert f"_{job.record.at.astimezone(UTC):%Y%m%dT%H%M%SZ}_" in name
    data = (export_storage / job.file_name).read_bytes()
    assert job.size == len(data)
    assert job.sha256 == hashlib.sha256(data).hexdigest()
    assert job.expires_at == job.finished_at + timedelta(days=7)
    files = unzip(export_storage, job)
    assert set(files) == {
        "manifest.json",
        "csv/mrss.csv",
        "csv/demographics.csv",
        "csv/dictionary.csv",
    }
    manifest = json.loads(files["manifest.json"])
    assert manifest["blinding"] == "BLINDED" and manifest["exported_by"] == "datamanager"
    assert hashlib.sha256(files["manifest.json"]).hexdigest() == job.record.manifest_sha256
    for entry in manifest["files"]:
        assert hashlib.sha256(files[entry["name"]]).hexdigest() == entry["sha256"]
    mrss = pandas.read_csv(io.BytesIO(files["csv/mrss.csv"]), dtype=str, keep_default_na=False)
    assert len(mrss) == Mrss.objects.filter(patient__study=rct).count() > 0
    # The rows written out of the total, as the progress bar ends.
    rows = sum(
        entry.get("rows", 0) for entry in manifest["files"] if entry["name"] != "csv/dictionary.csv"
    )
    assert job.written == job.total >= rows > 0
    assert job.percent == 100
    assert job.record.blinded and ExportRecord.objects.get() == job.record


def test_the_task_run_twice_writes_one_zip(rct, export_storage, django_capture_on_commit_callbacks):
    job = run_job(user("datamanager"), rct, django_capture_on_commit_callbacks, forms=["mrss"])
    assert export_job_run(job_id=job.pk) == "not-queued"
    assert ExportRecord.objects.count() == 1
    assert len(list(export_storage.rglob("*.zip"))) == 1


def test_an_unblinded_job_says_so_in_its_name_and_manifest(
    rct, export_storage, django_capture_on_commit_callbacks
):
    job = run_job(
        user("admin"), rct, django_capture_on_commit_callbacks, forms=["mrss"], unblinded=True
    )
    assert job.file_name.endswith(f"_UNBLINDED_{job.pk}.zip")
    files = unzip(export_storage, job)
    assert json.loads(files["manifest.json"])["blinding"] == "UNBLINDED"
    assert "csv/allocation.csv" in files
    assert not job.record.blinded


def test_a_job_whose_user_lost_the_right_fails_with_a_message(
    rct, export_storage, django_capture_on_commit_callbacks
):
    diane = user("datamanager")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = export_job_create(request=export_prepare(study=rct, by=diane))
    Membership.objects.filter(user=diane, study=rct).update(active=False)
    with translation.override("en"):
        for callback in callbacks:
            callback()
    job.refresh_from_db()
    assert job.status == ExportJob.Status.FAILED
    assert job.error.startswith("The export was refused: Your role does not allow you to export")
    assert not job.file_name and job.record is None
    assert not list(export_storage.rglob("*.zip"))


def test_an_unexpected_failure_is_a_readable_message_and_the_traceback_is_logged(
    rct, export_storage, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(jobs, "_zip_folder", broken)
    with translation.override("en"):
        job = run_job(user("datamanager"), rct, django_capture_on_commit_callbacks, forms=["mrss"])
    assert job.status == ExportJob.Status.FAILED
    assert "unexpected error, recorded in the server's log" in job.error
    assert "disk on fire" not in job.error
    assert "disk on fire" in caplog.text and "Traceback" in caplog.text


def test_a_download_is_audited_and_only_for_the_asker_and_administrators(
    rct, export_storage, django_capture_on_commit_callbacks
):
    diane, admin = user("datamanager"), user("admin")
    job = run_job(diane, rct, django_capture_on_commit_callbacks, forms=["mrss"])
    with export_download(job=job, by=diane) as file:
        assert hashlib.sha256(file.read()).hexdigest() == job.sha256
    with export_download(job=job, by=admin) as file:
        file.read()
    monitor = user("monitor.bordeaux")
    with pytest.raises(PermissionDenied):
        export_download(job=job, by=monitor)
    downloads = list(
        ExportDownload.objects.order_by("pk").values_list("by", "blinded", "sha256", "job")
    )
    assert downloads == [(diane.pk, True, job.sha256, job.pk), (admin.pk, True, job.sha256, job.pk)]
    event = pghistory.models.Events.objects.tracks(
        ExportDownload.objects.order_by("pk").first()
    ).get()
    assert event.pgh_context["user"] == diane.pk
    assert f"blinded export {job.pk} downloaded" == event.pgh_context["reason"]


def test_expired_exports_are_deleted_once_and_marked_expired(
    rct, export_storage, django_capture_on_commit_callbacks, fixed_clock
):
    diane = user("datamanager")
    old = run_job(diane, rct, django_capture_on_commit_callbacks, forms=["mrss"])
    fixed_clock.shift(timedelta(days=3))
    recent = run_job(diane, rct, django_capture_on_commit_callbacks, forms=["demographics"])
    assert (export_storage / old.file_name).exists()
    fixed_clock.shift(timedelta(days=5))  # the first is 8 days old, the second 5
    assert delete_expired_exports.delay().get() == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.status == ExportJob.Status.EXPIRED and old.file_name == ""
    assert old.expired_at is not None and old.sha256  # the checksum stays on the record
    assert recent.status == ExportJob.Status.DONE
    assert [p.name for p in export_storage.rglob("*.zip")] == [recent.file_name.rsplit("/")[-1]]
    # Idempotent: a second sweep deletes nothing more.
    assert exports_delete_expired() == 0
    events = pghistory.models.Events.objects.tracks(old).order_by("pgh_id")
    assert events.last().pgh_data["status"] == "expired"
    assert events.last().pgh_context["reason"] == f"export {old.pk} expired"
    with pytest.raises(ExportGone):
        export_download(job=old, by=diane)


def test_a_zip_past_its_expiry_is_not_handed_out_before_the_sweep(
    rct, export_storage, django_capture_on_commit_callbacks, fixed_clock
):
    diane = user("datamanager")
    job = run_job(diane, rct, django_capture_on_commit_callbacks, forms=["mrss"])
    fixed_clock.shift(timedelta(days=7, minutes=1))
    with pytest.raises(ExportGone):
        export_download(job=job, by=diane)
    assert not ExportDownload.objects.exists()


def test_a_zip_missing_from_the_storage_is_gone_not_an_error(
    rct, export_storage, django_capture_on_commit_callbacks
):
    diane = user("datamanager")
    job = run_job(diane, rct, django_capture_on_commit_callbacks, forms=["mrss"])
    (export_storage / job.file_name).unlink()
    with pytest.raises(ExportGone):
        export_download(job=job, by=diane)
    assert not ExportDownload.objects.exists()


def test_the_beat_queues_lost_jobs_again_and_ends_those_whose_worker_died(
    rct, export_storage, django_capture_on_commit_callbacks, fixed_clock
):
    diane = user("datamanager")
    with django_capture_on_commit_callbacks(execute=False):  # the dispatch is lost
        lost = export_job_create(request=export_prepare(study=rct, by=diane, forms=["mrss"]))
    stuck = ExportJob.objects.create(
        by=diane,
        study=rct,
        requested_at=timezone.now(),
        formats=["csv"],
        status=ExportJob.Status.RUNNING,
        started_at=timezone.now(),
    )
    assert requeue_exports.delay().get() == 0  # too recent to be lost
    fixed_clock.shift(timedelta(hours=7))
    with translation.override("en"):
        assert requeue_exports.delay().get() == 1  # run eagerly: the export is written
    lost.refresh_from_db()
    stuck.refresh_from_db()
    assert lost.status == ExportJob.Status.DONE
    assert stuck.status == ExportJob.Status.FAILED
    assert stuck.error == (
        "The export stopped before it finished (its worker ended); ask for it again."
    )
