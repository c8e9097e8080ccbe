"""The export screen: ask for an export, follow its progress, list and download the zips.

For the people the permission table lets export (data managers, administrators). An
export job is seen by the person who asked and the study's administrators; anyone else
gets a 404, as for another site's patient.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ecrf.core.pagination import paginate
from ecrf.exports.forms import ExportForm
from ecrf.exports.jobs import (
    ExportGone,
    administered_study_ids,
    export_download,
    export_job_create,
    export_job_progress,
    export_jobs_visible_to,
    export_studies_for,
    export_study_for,
    may_download,
)
from ecrf.exports.models import ExportJob

LIST_PAGE_SIZE = 25


@login_required
def export_new(request):
    """Choose a study, then what to export; a valid submit queues the job."""
    studies = list(export_studies_for(request.user).order_by("code"))
    if not studies:
        raise PermissionDenied(_("Your role does not allow you to export data."))
    code = request.POST.get("study") or request.GET.get("study") or studies[0].code
    study = next((s for s in studies if s.code == code), None)
    if study is None:  # refused there: a 403 to a member of the study, a 404 to anyone else
        study = export_study_for(request.user, code)
    form = ExportForm(
        request.POST if request.method == "POST" else None, user=request.user, study=study
    )
    if request.method == "POST" and form.is_valid():
        job = export_job_create(request=form.export_request)
        messages.success(
            request,
            _("Export #%(job)s of %(study)s is queued; this page follows it.")
            % {"job": job.pk, "study": study.code},
        )
        return redirect("exports:job", job.pk)
    for error in form.non_field_errors():
        messages.error(request, error)
    return render(
        request,
        "exports/new.html",
        {"form": form, "studies": studies, "export_study": study},
        status=400 if form.is_bound else 200,
    )


@login_required
def export_list(request):
    """The user's exports (the study's for its administrators), newest first."""
    jobs = export_jobs_visible_to(request.user).select_related("study", "by")
    page, query = paginate(request, jobs, size=LIST_PAGE_SIZE)
    administered = administered_study_ids(request.user)
    rows = [(job, may_download(request.user, job, administered=administered)) for job in page]
    return render(
        request,
        "exports/list.html",
        {
            "page": page,
            "rows": rows,
            "query": query,
            "may_export": export_studies_for(request.user).exists(),
            "retention": settings.EXPORT_RETENTION_DAYS,
        },
    )


def _job_for(user, job_id: int) -> ExportJob:
    return get_object_or_404(
        export_jobs_visible_to(user).select_related("study", "by", "record"), pk=job_id
    )


@login_required
def export_job(request, job_id: int):
    """One export: what was asked, its progress (the bar polls `export_progress`), its file."""
    job = _job_for(request.user, job_id)
    return render(
        request,
        "exports/job.html",
        {
            "job": job,
            "progress": export_job_progress(job),
            "may_download": may_download(request.user, job),
            "downloads": job.downloads.select_related("by")[:20],
        },
    )


@never_cache
@require_GET
@login_required
def export_progress(request, job_id: int):
    """{status, written, total, percent} of a job: what the progress bar polls."""
    job = _job_for(request.user, job_id)
    return JsonResponse(export_job_progress(job))


@login_required
def export_file(request, job_id: int):
    """The zip, streamed from the storage; the download is audited first."""
    job = _job_for(request.user, job_id)
    try:
        file = export_download(job=job, by=request.user)
    except PermissionDenied:
        # An administrator's own job list shows it; to anyone else it does not exist.
        raise Http404 from None
    except ExportGone:
        return render(
            request,
            "exports/gone.html",
            {"job": job, "retention": settings.EXPORT_RETENTION_DAYS},
            status=410,
        )
    name = job.file_name.rsplit("/", 1)[-1]
    response = FileResponse(file, as_attachment=True, filename=name, content_type="application/zip")
    response["Cache-Control"] = "no-store"
    return response
