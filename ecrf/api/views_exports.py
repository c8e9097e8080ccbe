"""Export jobs: asked for, followed and downloaded as on the export screen, by the same code.

The body goes through the screen's own form (`ExportForm`, which hands it to
`export_prepare`): the same formats, sites, forms, cut-off, blinding and audit period are
refused in the same words, on the same field names. `export_study_for` says 403 or 404 for
the study, `export_jobs_visible_to` scopes the reads (another's job is a 404) and
`export_download` opens the zip and records the download, as for the screen.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.response import Response

from ecrf.api.auth import AuditedApiMixin
from ecrf.api.errors import error_body
from ecrf.api.pagination import NewestFirst
from ecrf.api.serializers import ErrorSerializer
from ecrf.api.views import READ, ApiView, refusals
from ecrf.exports.forms import ExportForm
from ecrf.exports.jobs import (
    ExportGone,
    export_download,
    export_job_create,
    export_job_progress,
    export_jobs_visible_to,
    export_study_for,
)
from ecrf.exports.models import ExportJob
from ecrf.exports.services import FORMATS

UNFINISHED = (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING)


@extend_schema_field(OpenApiTypes.DATETIME)
class _Instant(serializers.CharField):
    """Passed on as typed: the screen's form reads it, in the study's time zone when the
    text gives no offset."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, allow_blank=True, **kwargs)


class _Codes(serializers.ListField):
    """A list of codes whose refusal is a list of sentences, as every field's (DRF's own is
    a mapping by position, which the error body would print as a dict)."""

    child = serializers.CharField()

    def __init__(self, help_text: str):
        super().__init__(required=False, help_text=help_text)

    def run_child_validation(self, data):
        try:
            return super().run_child_validation(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError(
                [
                    _("Item %(number)s: %(message)s") % {"number": index + 1, "message": message}
                    for index, messages in exc.detail.items()
                    for message in messages
                ]
            ) from None


class ExportAskSerializer(serializers.Serializer):
    """What to export: the screen's choices. Only the types are checked here; the values are
    the export service's to judge."""

    study = serializers.CharField(help_text="The study's code, e.g. NCT00479934.")
    formats = _Codes("One or more of: " + ", ".join(FORMATS) + ". Each is a folder of the zip.")
    sites = _Codes("Site codes; absent or empty: every site you may export.")
    forms = _Codes("Form codes; absent or empty: every form of the study.")
    as_of = _Instant(help_text="The data as they were at this instant; absent: now.")
    unblinded = serializers.BooleanField(
        default=False,
        help_text="Add the allocation (arms): only for those who see it. The zip, its "
        "manifest and the audit trail then say UNBLINDED.",
    )
    initials = serializers.BooleanField(
        default=False, help_text="With the patients' initials (a near-identifier)."
    )
    audit_from = _Instant(help_text="For the audit trail formats: from this instant.")
    audit_to = _Instant(help_text="For the audit trail formats: until this instant.")


class ExportProgressSerializer(serializers.Serializer):
    # A string, not a second enum of the job's statuses: drf-spectacular could name an enum
    # used by two components only by a hash.
    status = serializers.CharField(help_text="The job's status.")
    written = serializers.IntegerField(help_text="Rows written so far.")
    total = serializers.IntegerField(help_text="Rows in all (0 until counted).")
    percent = serializers.IntegerField()


class ExportJobSerializer(serializers.ModelSerializer):
    """An export job: what was asked, where it is, and its zip's address once written."""

    study = serializers.CharField(source="study.code")
    by = serializers.CharField(source="by.username")
    formats = serializers.ListField(child=serializers.CharField())
    sites = serializers.ListField(child=serializers.CharField(), help_text="Empty: every site.")
    forms = serializers.ListField(child=serializers.CharField(), help_text="Empty: every form.")
    progress = serializers.SerializerMethodField()
    download = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id", "study", "by", "status", "formats", "sites", "forms", "as_of",
            "audit_from", "audit_to", "unblinded", "initials", "requested_at", "started_at",
            "finished_at", "size", "sha256", "expires_at", "error", "progress", "download",
        ]  # fmt: skip

    @extend_schema_field(ExportProgressSerializer)
    def get_progress(self, job: ExportJob) -> dict:
        return export_job_progress(job)

    @extend_schema_field(
        serializers.URLField(allow_null=True, help_text="The zip, once the job is done.")
    )
    def get_download(self, job: ExportJob) -> str | None:
        if job.status != ExportJob.Status.DONE:
            return None
        url = reverse("api:export_download", args=[job.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


def _job_for(user, job_id: int) -> ExportJob:
    return get_object_or_404(export_jobs_visible_to(user).select_related("study", "by"), pk=job_id)


def _refused(form: ExportForm):
    """The form's refusals as the API answers them: the service's PermissionDenied as a
    403, every other one on its field (400)."""
    if form.denied is not None:
        return form.denied
    return ValidationError(form.errors.as_data())


@extend_schema(tags=["exports"])
class ExportJobList(AuditedApiMixin, generics.ListAPIView):
    """Your export jobs (every job of the studies you administer), newest first; a new one."""

    serializer_class = ExportJobSerializer
    pagination_class = NewestFirst

    def get_queryset(self):
        return export_jobs_visible_to(self.request.user).select_related("study", "by")

    @extend_schema(
        description="Your export jobs, and every job of the studies you administer.",
        responses={200: ExportJobSerializer(many=True), **READ},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=ExportAskSerializer,
        responses={
            202: OpenApiResponse(ExportJobSerializer, description="Queued: poll the job."),
            **refusals(400, 401, 403, 404, 429),
        },
    )
    def post(self, request):
        """Queue an export, checked as the export screen checks it; poll the job it
        returns until its status is done, then download its zip."""
        body = ExportAskSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        asked = dict(body.validated_data)
        study = export_study_for(request.user, asked.pop("study"))
        form = ExportForm(asked, user=request.user, study=study)
        if not form.is_valid():
            raise _refused(form)
        job = export_job_create(request=form.export_request)
        data = ExportJobSerializer(job, context=self.get_serializer_context()).data
        location = request.build_absolute_uri(reverse("api:export", args=[job.pk]))
        return Response(data, status=202, headers={"Location": location})


@extend_schema(tags=["exports"], responses={200: ExportJobSerializer, **READ})
class ExportJobDetail(ApiView):
    """One export job: its status and progress, what to poll while it runs."""

    def get(self, request, job_id: int):
        job = _job_for(request.user, job_id)
        return Response(ExportJobSerializer(job, context={"request": request}).data)


@extend_schema(
    tags=["exports"],
    responses={
        (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The zip."),
        409: OpenApiResponse(ErrorSerializer, description="Not written yet: poll the job."),
        410: OpenApiResponse(ErrorSerializer, description="Failed, expired or deleted."),
        **READ,
    },
)
class ExportJobDownload(ApiView):
    """The job's zip, streamed; the download is recorded first (who, when, blinded or not,
    the checksum), as on the screen."""

    def perform_content_negotiation(self, request, force=False):
        # The zip is no rendered body: whatever the Accept header, the file comes, and a
        # refusal comes as JSON.
        return super().perform_content_negotiation(request, force=True)

    def get(self, request, job_id: int):
        job = _job_for(request.user, job_id)
        try:
            file = export_download(job=job, by=request.user)
        except PermissionDenied:
            # As on the screen: to anyone but the asker and the administrators, no such job.
            raise Http404 from None
        except ExportGone:
            values = {"pk": job.pk, "status": job.get_status_display()}
            if job.status in UNFINISHED:
                message = _(
                    "Export #%(pk)s is not written yet (%(status)s): poll it until its "
                    "status is done, then download it."
                )
                return Response(error_body(message % values), 409)
            # The screen's words (templates/exports/gone.html).
            if job.status in (ExportJob.Status.EXPIRED, ExportJob.Status.DONE):
                message = _(
                    "The zip of export #%(pk)s expired and was deleted: exports are kept for a "
                    "limited time. Ask for a new export."
                )
            else:
                message = _("Export #%(pk)s has no zip to download (%(status)s).")
            return Response(error_body(message % values), 410)
        name = job.file_name.rsplit("/", 1)[-1]
        response = FileResponse(
            file, as_attachment=True, filename=name, content_type="application/zip"
        )
        response["Cache-Control"] = "no-store"
        return response
