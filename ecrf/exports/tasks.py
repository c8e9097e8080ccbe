"""The exports' Celery tasks: thin wrappers around ecrf/exports/jobs.py."""

from __future__ import annotations

from celery import shared_task

from ecrf.exports.jobs import export_job_run, export_jobs_requeue, exports_delete_expired


@shared_task
def run_export(job_id: int) -> str:
    """Write one export job's zip; a second run of the same job does nothing."""
    return export_job_run(job_id=job_id)


@shared_task
def delete_expired_exports() -> int:
    """Beat task, hourly: delete the zips past their expiry and mark their jobs expired."""
    return exports_delete_expired()


@shared_task
def requeue_exports() -> int:
    """Beat task: queue again the jobs whose dispatch was lost (a broker down then)."""
    return export_jobs_requeue()
