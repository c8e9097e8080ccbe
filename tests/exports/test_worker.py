"""The export screen's task through a real Celery worker against Redis, on the demo's data:
the zip it writes into the exports storage unzips, its manifest says BLINDED and its files
match their checksums and the database; a second delivery of the task does nothing. And the
progress, written through a connection of its own, is seen by others while the export's
transaction is still open. The worker harness is tests/workers.py.

Transactional, so tests/exports/conftest.py runs these before the seeded tests (whose
transaction stays open for the package).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pandas
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test import override_settings
from django.utils import timezone

from ecrf.crfs.models import Mrss
from ecrf.exports.jobs import _Progress, export_job_create
from ecrf.exports.models import ExportJob, ExportRecord
from ecrf.exports.services import FORMATS, export_prepare
from ecrf.exports.tasks import run_export
from ecrf.studies.models import Study
from tests.workers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
RUN = "ecrf.exports.tasks.run_export"
LOCMEM = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


@pytest.fixture
def demo(monkeypatch):
    """The demo's data, committed (the seed's emails go nowhere: it runs eagerly, before
    the worker's fixture turns eager mode off)."""
    monkeypatch.setenv("DEMO_PASSWORD", "worker-password-2026")
    with override_settings(MAILERS=LOCMEM):
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return Study.objects.get(code="NCT00479934")


@pytest.mark.worker
def test_an_export_job_runs_for_real_through_the_worker(
    demo, export_storage, monkeypatch, celery_workers
):
    # The worker is another process: it is told where the exports storage is.
    monkeypatch.setenv("EXPORT_STORAGE_OPTIONS", json.dumps({"location": str(export_storage)}))
    celery_workers.start("exports")
    manager = get_user_model().objects.get(username="datamanager")
    job = export_job_create(request=export_prepare(study=demo, by=manager, formats=FORMATS))
    assert wait_for(
        lambda: ExportJob.objects.get(pk=job.pk).status in ("done", "failed"), timeout=180
    ), f"the worker did not finish the export: {celery_workers.log_text()[-3000:]}"
    job.refresh_from_db()
    assert job.status == ExportJob.Status.DONE, job.error
    assert celery_workers.results(RUN) == ["done"]
    data = (export_storage / job.file_name).read_bytes()
    assert len(data) == job.size and hashlib.sha256(data).hexdigest() == job.sha256
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        files = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(files["manifest.json"])
    assert manifest["blinding"] == "BLINDED" and manifest["exported_by"] == "datamanager"
    assert manifest["formats"] == list(FORMATS)
    for entry in manifest["files"]:
        assert hashlib.sha256(files[entry["name"]]).hexdigest() == entry["sha256"]
    mrss = pandas.read_csv(io.BytesIO(files["csv/mrss.csv"]), dtype=str, keep_default_na=False)
    stored = list(
        Mrss.objects.filter(patient__study=demo)
        .order_by("patient__subject_code", "visit__sequence", "visit__repeat", "pk")
        .values_list("patient__subject_code", "total")
    )
    assert list(zip(mrss["subject_code"], mrss["total"].astype(int), strict=True)) == stored
    record = ExportRecord.objects.get()
    assert job.record == record and record.by == manager and record.blinded
    assert job.written == job.total > 0
    # A second delivery of the same task (a broker redelivering) claims nothing.
    run_export.delay(job.pk)
    assert wait_for(lambda: len(celery_workers.results(RUN)) == 2, timeout=60)
    assert celery_workers.results(RUN) == ["done", "not-queued"]
    assert ExportRecord.objects.count() == 1
    assert len(list(export_storage.rglob("*.zip"))) == 1


def test_progress_is_seen_by_others_while_the_export_transaction_is_open(db):
    manager = get_user_model().objects.create(username="progress-watcher")
    study = Study.objects.get(code="NCT00479934")
    job = ExportJob.objects.create(
        by=manager,
        study=study,
        requested_at=timezone.now(),
        formats=["csv"],
        status=ExportJob.Status.RUNNING,
    )
    watcher = connections.create_connection("default")
    progress = _Progress(job.pk)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:  # as the export does
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            assert ExportJob.objects.filter(pk=job.pk).exists()  # the snapshot is taken
            progress(500, 2000)
            with watcher.cursor() as cursor:
                cursor.execute(
                    "SELECT status, written, total FROM exports_exportjob WHERE id = %s", [job.pk]
                )
                assert cursor.fetchone() == ("running", 500, 2000)
    finally:
        progress.close()
        watcher.close()
