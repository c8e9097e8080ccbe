"""The export screen's jobs: asked for on the screen, written by a Celery task into a zip
kept in the exports storage, downloaded by the person who asked (and the study's
administrators), deleted when they expire. Every step is audited.

The export itself is `services.export_prepare` and `services.export_write`, as for the
command: the screen checks with the first, the task checks again (as the job's user, who
may have lost the right meanwhile) and writes with the second.

Progress. `export_write` reports the rows written from inside its REPEATABLE READ
transaction, so a progress column written through that connection stays invisible until
the export ends. It is written through a second connection of its own (`_Progress`),
in autocommit, to the job's row: the database every process already shares (web, workers,
the demo's embedded server), one primary-key UPDATE every PROGRESS_STEP rows, and the same
row the job page and the progress endpoint read, so the bar survives a reload and a
restart. Celery's result backend or a Redis cache would each have needed a store of their
own that the demo (kombu's filesystem transport) does not run.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import zipfile
from datetime import UTC, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.storage import storages
from django.db import connections, transaction
from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError

from ecrf.accounts.access import roles_for, studies_visible_to
from ecrf.accounts.models import Membership, Role, account_id
from ecrf.accounts.permissions import Action, roles_allowed
from ecrf.audit.context import audited
from ecrf.exports.models import ExportDownload, ExportJob
from ecrf.exports.services import ExportRequest, export_prepare, export_require, export_write
from ecrf.studies.models import Site, Study

log = logging.getLogger(__name__)
STORAGE = "exports"


def export_storage():
    return storages[STORAGE]


class ExportGone(Exception):
    """The job's zip is no longer there (expired, deleted, or never written)."""


# --- Asking ---------------------------------------------------------------------------


def export_studies_for(user):
    """The studies where the user may export at one site at least."""
    return Study.objects.filter(
        Exists(
            Membership.objects.held_by(account_id(user)).filter(
                study_id=OuterRef("id"), role__in=roles_allowed(Action.EXPORT)
            )
        )
    )


def export_study_for(user, code: str) -> Study:
    """The study `code` to export from, for the screen and the API alike: PermissionDenied
    for a member whose role may not export, Http404 for anyone else (as another site's
    patient)."""
    study = export_studies_for(user).filter(code=code).first()
    if study is not None:
        return study
    if studies_visible_to(user).filter(code=code).exists():
        raise PermissionDenied(_("Your role does not allow you to export data of this study."))
    raise Http404


def _asked(request: ExportRequest) -> dict:
    return {
        "formats": list(request.formats),
        "sites": [site.code for site in request.sites],
        "forms": list(request.forms_asked),
        "as_of": request.as_of,
        "audit_from": request.audit_from,
        "audit_to": request.audit_to,
        "unblinded": request.unblinded,
        "initials": request.initials,
    }


def export_job_create(*, request: ExportRequest) -> ExportJob:
    """Record an export checked by `export_prepare` and queue its task once committed."""
    with transaction.atomic():
        what = "UNBLINDED export" if request.unblinded else "blinded export"
        with audited(by=request.by, reason=f"{what} of {request.study.code} asked for"):
            job = ExportJob.objects.create(
                by=request.by, study=request.study, requested_at=timezone.now(), **_asked(request)
            )
        transaction.on_commit(lambda: _dispatch(job.pk))
    return job


def _dispatch(job_id: int) -> None:
    """Hand the job to the broker. The job is committed: a broker that is down must not
    turn it into an error page; it stays queued and `requeue_exports` (beat) sends it."""
    from ecrf.exports.tasks import run_export

    try:
        run_export.delay(job_id)
    except (OperationalError, OSError):
        log.exception("export job %s not queued (broker unavailable); beat will retry", job_id)


# --- Running --------------------------------------------------------------------------


class _Progress:
    """The rows written, reported to the job's row through a connection of its own (the
    export's transaction would hide it until the end): see the module's docstring."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.connection = None
        self.written = self.total = 0

    def __call__(self, written: int, total: int) -> None:
        self.written, self.total = written, total
        if self.connection is None:
            self.connection = connections.create_connection("default")
        with self.connection.cursor() as cursor:
            cursor.execute(
                "UPDATE exports_exportjob SET written = %s, total = %s "
                "WHERE id = %s AND status = %s",
                [written, total, self.job_id, ExportJob.Status.RUNNING],
            )

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def zip_name(job: ExportJob, at) -> str:
    """The study, the UTC time and BLINDED/UNBLINDED: never an arm."""
    code = job.study.code
    return f"{code}/{code}_{at.astimezone(UTC):%Y%m%dT%H%M%SZ}_{job.blinding}_{job.pk}.zip"


def _zip_folder(folder: Path, target: Path) -> tuple[int, str]:
    """Every file under `folder` into the zip `target`, one at a time (zipfile reads each in
    blocks, so memory stays flat); its size and SHA-256."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(folder).as_posix())
    sha = hashlib.sha256()
    with target.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            sha.update(block)
    return target.stat().st_size, sha.hexdigest()


def _refusal(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return " ".join(str(m) for messages in exc.message_dict.values() for m in messages)
        return " ".join(exc.messages)
    return str(exc)


def export_job_run(*, job_id: int) -> str:
    """Write a queued job's export into a zip in the exports storage; what happened.

    Safe to run twice: the first run claims the job (queued → running) with a conditional
    UPDATE, a second finds nothing to claim. A refusal (the user lost the right, a site left
    the study) or a failure ends the job failed with a readable message; the traceback goes
    to the log only.
    """
    claimed = ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED).update(
        status=ExportJob.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return "not-queued"
    job = ExportJob.objects.select_related("by", "study").get(pk=job_id)
    progress = _Progress(job.pk)
    try:
        request = export_prepare(
            study=job.study,
            by=job.by,
            formats=job.formats,
            sites=job.sites or None,
            forms=job.forms or None,
            as_of=job.as_of,
            unblinded=job.unblinded,
            initials=job.initials,
            audit_from=job.audit_from,
            audit_to=job.audit_to,
        )
        with tempfile.TemporaryDirectory(prefix="ecrf-export-") as tmp:
            folder = Path(tmp) / "export"
            record = export_write(request, folder, on_progress=progress)
            progress.close()
            archive = Path(tmp) / "export.zip"
            size, sha256 = _zip_folder(folder, archive)
            with archive.open("rb") as file:
                name = export_storage().save(zip_name(job, request.now), File(file))
    except (ValidationError, PermissionDenied) as exc:
        _fail(job, _("The export was refused: %(reason)s") % {"reason": _refusal(exc)})
        return "refused"
    except Exception:
        log.exception("export job %s failed", job.pk)
        _fail(
            job,
            _(
                "The export failed on an unexpected error, recorded in the server's log; "
                "ask for it again, or tell the administrator if it fails again."
            ),
        )
        return "failed"
    finally:
        progress.close()
    now = timezone.now()
    with transaction.atomic(), audited(by=job.by, reason=f"export zip of job {job.pk} written"):
        done = ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.RUNNING).update(
            status=ExportJob.Status.DONE,
            finished_at=now,
            record=record,
            file_name=name,
            size=size,
            sha256=sha256,
            written=progress.written,
            total=progress.total,
            expires_at=now + timedelta(days=settings.EXPORT_RETENTION_DAYS),
        )
    if not done:  # marked otherwise meanwhile: the file would belong to nothing
        export_storage().delete(name)
        return "abandoned"
    return "done"


def _fail(job: ExportJob, message: str) -> None:
    with transaction.atomic(), audited(by=job.by, reason=f"export job {job.pk} failed"):
        ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.RUNNING).update(
            status=ExportJob.Status.FAILED, finished_at=timezone.now(), error=message
        )


# A job running longer than this lost its worker (killed, machine lost): the task's
# redelivery finds it running and does nothing, so the sweep ends it as failed.
STALE_RUNNING = timedelta(hours=6)


def export_jobs_requeue(*, older_than: timedelta = timedelta(minutes=5)) -> int:
    """Queue again the jobs still queued a while after they were asked for (their dispatch
    was lost: a broker down at the time; running them twice is harmless), and end as failed
    those whose worker died while running them. The number queued again."""
    now = timezone.now()
    for job in ExportJob.objects.filter(
        status=ExportJob.Status.RUNNING, started_at__lt=now - STALE_RUNNING
    ).select_related("by"):
        _fail(
            job,
            _("The export stopped before it finished (its worker ended); ask for it again."),
        )
    ids = list(
        ExportJob.objects.filter(
            status=ExportJob.Status.QUEUED, requested_at__lt=now - older_than
        ).values_list("pk", flat=True)[:100]
    )
    for job_id in ids:
        _dispatch(job_id)
    return len(ids)


# --- Reading --------------------------------------------------------------------------


def _administered(user):
    """The studies where the user is an administrator (an EXISTS on the memberships)."""
    return Exists(
        Membership.objects.held_by(account_id(user)).filter(
            study_id=OuterRef("study_id"), role=Role.ADMIN
        )
    )


def export_jobs_visible_to(user):
    """The user's own export jobs, and every job of the studies they administer."""
    user_id = account_id(user)
    if user_id is None:
        return ExportJob.objects.none()
    return ExportJob.objects.filter(Q(by_id=user_id) | _administered(user))


def export_job_progress(job: ExportJob) -> dict:
    return {
        "status": job.status,
        "written": job.written,
        "total": job.total,
        "percent": job.percent,
    }


def administered_study_ids(user) -> set[int]:
    """The studies the user administers (one query, for a list of jobs)."""
    return set(
        Membership.objects.held_by(account_id(user))
        .filter(role=Role.ADMIN)
        .values_list("study_id", flat=True)
    )


def may_download(user, job: ExportJob, *, administered: set[int] | None = None) -> bool:
    """The person who asked, and the study's administrators."""
    if account_id(user) is None:
        return False
    if job.by_id == user.pk:
        return True
    if administered is not None:
        return job.study_id in administered
    return Role.ADMIN in roles_for(user, study=job.study_id)


def export_download(*, job: ExportJob, by):
    """Open the job's zip for `by` and record the download (who, when, blinded or not, the
    checksum); the open file. PermissionDenied for anyone but the person who asked and the
    administrators; ExportGone once expired or deleted."""
    # The table first (who may export these sites at all), then whose export it is.
    sites = list(Site.objects.filter(code__in=job.sites, study_sites__study=job.study_id))
    sites = sites if job.sites else []
    export_require(by, study=job.study, sites=sites)
    if not may_download(by, job):
        raise PermissionDenied(_("Only the person who asked for an export downloads it."))
    storage = export_storage()
    if job.status != ExportJob.Status.DONE or not job.file_name:
        raise ExportGone(job.status)
    if job.expires_at is not None and job.expires_at <= timezone.now():
        raise ExportGone(ExportJob.Status.EXPIRED)
    try:
        file = storage.open(job.file_name, "rb")
    except FileNotFoundError:
        raise ExportGone("missing") from None
    with transaction.atomic():
        what = "UNBLINDED" if job.unblinded else "blinded"
        with audited(by=by, reason=f"{what} export {job.pk} downloaded"):
            ExportDownload.objects.create(
                job=job, by=by, at=timezone.now(), blinded=not job.unblinded, sha256=job.sha256
            )
    return file


# --- Expiry ---------------------------------------------------------------------------


def exports_delete_expired(*, now=None) -> int:
    """Delete the zips past their expiry from the storage and mark their jobs expired
    (audited); the number deleted. Idempotent: a job is marked once, by a conditional
    UPDATE, and a file already gone is no error."""
    now = now or timezone.now()
    storage = export_storage()
    deleted = 0
    due = ExportJob.objects.filter(status=ExportJob.Status.DONE, expires_at__lte=now)
    for job in due.select_related("by").order_by("pk").iterator():
        with transaction.atomic(), audited(by=None, reason=f"export {job.pk} expired"):
            marked = ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.DONE).update(
                status=ExportJob.Status.EXPIRED, expired_at=now, file_name=""
            )
            if marked:
                # In the transaction: a storage that fails rolls the mark back for next time.
                storage.delete(job.file_name)
                deleted += 1
    return deleted
