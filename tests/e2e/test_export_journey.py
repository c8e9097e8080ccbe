"""Browser journey of the export screen (issue 14): the data manager opens Exports from the
menu, asks for an export of the trial, watches the progress bar reach 100 % while a real
Celery worker writes it, downloads the zip and finds it blinded. Through the screens only.
"""

from __future__ import annotations

import json
import zipfile

import pytest
from django.core.management import call_command
from django.test import override_settings
from playwright.sync_api import expect

from ecrf.exports.models import ExportDownload, ExportJob
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_mrss_live_total import PASSWORD
from tests.e2e.test_review_journey import log_in_as

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
STUDY = "NCT00479934"
LOCMEM = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


@pytest.fixture
def storage(settings, tmp_path, monkeypatch):
    """The exports storage in the test's folder, for this process and the worker's."""
    location = tmp_path / "exports-storage"
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    monkeypatch.setenv("EXPORT_STORAGE_OPTIONS", json.dumps({"location": str(location)}))
    return location


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    with override_settings(MAILERS=LOCMEM):
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_the_data_manager_exports_watches_the_progress_and_downloads_the_zip(
    demo, storage, celery_workers, live_server, browser_page, tmp_path
):
    celery_workers.start("journey")
    page = browser_page
    page.set_default_timeout(20_000)
    log_in_as(page, live_server, "datamanager")
    page.get_by_test_id("menu-exports").click()
    page.wait_for_url("**/exports/")
    page.get_by_test_id("new-export").click()
    page.wait_for_url("**/exports/new/")
    form = page.get_by_test_id("export-form")
    assert STUDY in form.get_by_test_id("export-study").inner_text()
    assert form.locator("#id_formats_csv").is_checked()
    # Diane does not see the allocation: no unblinded choice is offered.
    assert form.locator("#id_unblinded").count() == 0
    page.screenshot(path="/tmp/h4-screen.png", full_page=True)
    page.screenshot(path=str(ARTIFACTS / "export-1-screen.png"), full_page=True)
    # A refusal first: a cut-off in the future, kept as typed, named on its field.
    form.locator("#id_as_of").fill("2099-01-01T10:00")
    form.get_by_test_id("export-submit").click()
    error = page.get_by_test_id("error-as_of")
    assert "is in the future" in error.inner_text()
    assert page.locator("#id_as_of").input_value() == "2099-01-01T10:00"
    assert not ExportJob.objects.exists()
    page.locator("#id_as_of").fill("")
    page.get_by_test_id("export-submit").click()
    page.wait_for_url("**/exports/jobs/*/")
    job = ExportJob.objects.get()
    # The page reads the job's state from the server: a reload loses nothing.
    page.reload()
    bar = page.get_by_test_id("progress-bar")
    assert bar.count() == 1
    # The bar follows the job to its end; the page then shows the download.
    expect(bar).to_have_js_property("value", 100, timeout=120_000)
    page.get_by_test_id("download").wait_for(timeout=30_000)
    job.refresh_from_db()
    assert job.status == ExportJob.Status.DONE, job.error
    assert page.get_by_test_id("progress-bar").get_attribute("value") == "100"
    shown = page.get_by_test_id("progress-text").inner_text()
    assert shown == f"{job.total} rows written out of {job.total} (100 %)"
    assert job.total > 0
    with page.expect_download() as download_info:
        page.get_by_test_id("download").click()
    download = download_info.value
    assert download.suggested_filename == job.file_name.rsplit("/", 1)[-1]
    assert download.suggested_filename.endswith(f"_BLINDED_{job.pk}.zip")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["blinding"] == "BLINDED" and manifest["study"] == STUDY
    assert manifest["exported_by"] == "datamanager"
    assert ExportDownload.objects.get().job == job
    page.get_by_role("link", name="← Exports").click()
    page.wait_for_url("**/exports/")
    row = page.get_by_test_id(f"export-{job.pk}")
    assert "blinded" in row.inner_text() and "Ready" in row.inner_text()
    page.screenshot(path="/tmp/h4-list.png", full_page=True)
    page.screenshot(path=str(ARTIFACTS / "export-2-list.png"), full_page=True)
    page.goto(f"{live_server.url}/exports/jobs/{job.pk}/")
    page.screenshot(path="/tmp/h4-job.png", full_page=True)
