"""The API's endpoints: the screens' selectors for every read, their services for every write.

No rule is written here: `visible_to` and `study_for`/`patient_for` scope the reads (another
site's patient is a 404), `crf_save` checks the role, the schedule, the locks and the
answers, in its transaction and audit context, which the API's own (`via: api`, the
client's token) wraps.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import generics
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from ecrf.accounts.access import can_see_allocation, studies_visible_to, study_sites_visible_to
from ecrf.api.auth import AuditedApiMixin
from ecrf.api.errors import error_body, stale_response
from ecrf.api.serializers import (
    ErrorSerializer,
    FormDataSerializer,
    FormWriteSerializer,
    PatientDetailSerializer,
    PatientSerializer,
    ProtocolSerializer,
    SiteSerializer,
    StaleSerializer,
    StudySerializer,
    form_representation,
)
from ecrf.api.values import field_metadata, values_from_json
from ecrf.core.errors import StaleVersion
from ecrf.crfs.models import FORM_MODELS
from ecrf.crfs.services import FormNotInVisit, WarningsPending, crf_for_visit, crf_save
from ecrf.patients.models import Patient, Visit
from ecrf.patients.selectors import patient_for, study_for
from ecrf.studies.models import Site

REFUSALS = {
    400: OpenApiResponse(ErrorSerializer, description="A value or parameter was refused."),
    401: OpenApiResponse(ErrorSerializer, description="No token, or one expired or revoked."),
    403: OpenApiResponse(ErrorSerializer, description="Your role does not allow it."),
    404: OpenApiResponse(ErrorSerializer, description="Not found, or not at your sites."),
    429: OpenApiResponse(ErrorSerializer, description="Too many calls: wait and try again."),
}


def refusals(*codes):
    return {code: REFUSALS[code] for code in codes}


READ = refusals(401, 403, 404, 429)
LIST = refusals(400, 401, 403, 404, 429)


class ApiView(AuditedApiMixin, APIView):
    pass


@extend_schema(tags=["studies"], responses={200: StudySerializer(many=True), **READ})
class StudyList(AuditedApiMixin, generics.ListAPIView):
    """The studies you are a member of."""

    serializer_class = StudySerializer

    def get_queryset(self):
        return studies_visible_to(self.request.user)


@extend_schema(tags=["studies"], responses={200: StudySerializer, **READ})
class StudyDetail(ApiView):
    """One study."""

    def get(self, request, study_code: str):
        return Response(StudySerializer(study_for(request.user, study_code)).data)


@extend_schema(tags=["studies"], responses={200: SiteSerializer(many=True), **READ})
class SiteList(AuditedApiMixin, generics.ListAPIView):
    """The study's sites you may see."""

    serializer_class = SiteSerializer

    def get_queryset(self):
        study = study_for(self.request.user, self.kwargs["study_code"])
        return Site.objects.filter(
            study_sites__in=study_sites_visible_to(self.request.user).filter(study=study)
        )


def _visit_description(visit) -> dict:
    return {
        "code": visit.code,
        "name": visit.name,
        "kind": visit.kind,
        "target_day": visit.target_day,
        "earliest_day": visit.earliest_day,
        "latest_day": visit.latest_day,
        "repeatable": visit.repeatable,
        "after_visit": visit.after_visit,
        "forms": [
            {
                "form": f.form,
                "required": f.required,
                "groups": list(f.groups) if f.groups is not None else None,
                "condition": f.condition,
            }
            for f in visit.forms
        ],
    }


def _form_description(form) -> dict:
    model = FORM_MODELS.get(form.code)
    return {
        "code": form.code,
        "label": form.label,
        "repeatable": form.repeatable,
        "per_patient": form.per_patient,
        "fields": field_metadata(model) if model is not None else [],
    }


@extend_schema(tags=["studies"], responses={200: ProtocolSerializer, **READ})
class ProtocolDetail(ApiView):
    """The protocol version in force: visits, their windows (days from day 0) and forms, and
    each form's fields with their types and choices, for a client's mapping."""

    def get(self, request, study_code: str):
        study = study_for(request.user, study_code)
        version = study.current_protocol
        protocol = version.protocol
        return Response(
            {
                "version": version.version,
                "effective_date": version.effective_date.isoformat(),
                "sha256": version.sha256,
                "visits": [_visit_description(v) for v in protocol.visits],
                "forms": [_form_description(f) for f in protocol.forms],
            }
        )


SITE = OpenApiParameter("site", str, description="A site's code, e.g. BXP.")
STATUS = OpenApiParameter(
    "status", str, enum=[value for value, _label in Patient.Status.choices], description="Status."
)


def site_filter(request, rows, lookup: str):
    """The rows of the site the `site` parameter names (its code), or all of them."""
    site = request.query_params.get("site")
    return rows.filter(**{lookup: site}) if site else rows


@extend_schema(
    tags=["patients"], parameters=[SITE, STATUS],
    responses={200: PatientSerializer(many=True), **LIST},
)  # fmt: skip
class PatientList(AuditedApiMixin, generics.ListAPIView):
    """The study's patients at your sites. Never the arm for a blinded user."""

    serializer_class = PatientSerializer

    def get_queryset(self):
        self.study = study_for(self.request.user, self.kwargs["study_code"])
        rows = (
            Patient.objects.visible_to(self.request.user)
            .filter(study=self.study)
            .select_related("site", "allocation")
        )
        status = self.request.query_params.get("status")
        if status is not None and status not in Patient.Status.values:
            raise ValidationError(
                {"status": _("Status: one of %s.") % ", ".join(Patient.Status.values)}
            )
        rows = rows.filter(status=status) if status else rows
        return site_filter(self.request, rows, "site__code")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        study = getattr(self, "study", None)
        context["sees_allocation"] = study is not None and can_see_allocation(
            self.request.user, study=study
        )
        return context


@extend_schema(tags=["patients"], responses={200: PatientDetailSerializer, **READ})
class PatientDetail(ApiView):
    """One patient and their visits: target dates, windows, status."""

    def get(self, request, study_code: str, subject_code: str):
        study = study_for(request.user, study_code)
        patient = patient_for(request.user, study, subject_code)
        patient.visits_list = list(patient.visits.order_by("sequence", "repeat"))
        data = PatientDetailSerializer(
            patient, context={"sees_allocation": can_see_allocation(request.user, study=study)}
        ).data
        return Response(data)


def _form_model(study, form_code: str):
    """The model of one of the study's forms (404 for a code the protocol does not have)."""
    protocol = study.current_protocol.protocol
    model = FORM_MODELS.get(form_code)
    if model is None or not protocol.has_form(form_code):
        known = ", ".join(f.code for f in protocol.forms if f.code in FORM_MODELS)
        raise NotFound(_("This study has no form %(form)s: one of %(known)s.")
                       % {"form": form_code, "known": known})  # fmt: skip
    return model


UPDATED_SINCE = OpenApiParameter(
    "updated_since", OpenApiTypes.DATETIME,
    description="Only the instances changed at or after this instant (ISO 8601, with its "
    "offset): the incremental pull of a nightly pipeline.",
)  # fmt: skip
VISIT = OpenApiParameter("visit", str, description="A visit's code, e.g. M3.")


def updated_since(request) -> datetime | None:
    text = request.query_params.get("updated_since")
    if text is None:
        return None
    try:
        value = parse_datetime(text.replace(" ", "+"))
        if value is not None:
            value = value if timezone.is_aware(value) else timezone.make_aware(value)
            # In UTC: PostgreSQL takes no offset beyond 15:59, which ISO 8601 allows.
            return value.astimezone(UTC)
    except (ValueError, OverflowError):
        pass  # well formed but no instant, e.g. 30 February, or before year 1 in UTC
    raise ValidationError(
        {"updated_since": _("Updated since: a date and time, e.g. 2026-12-01T00:00:00Z.")}
    )


@extend_schema(
    tags=["form data"], parameters=[SITE, VISIT, UPDATED_SINCE],
    responses={200: FormDataSerializer(many=True), **LIST},
)  # fmt: skip
class FormDataList(AuditedApiMixin, generics.ListAPIView):
    """Every instance of one form in the study, at your sites, oldest first."""

    serializer_class = FormDataSerializer

    def get_queryset(self):
        study = study_for(self.request.user, self.kwargs["study_code"])
        model = _form_model(study, self.kwargs["form_code"])
        rows = (
            model.objects.visible_to(self.request.user)
            .filter(patient__study=study)
            .select_related("patient__site", "visit")
        )
        rows = site_filter(self.request, rows, "patient__site__code")
        if visit := self.request.query_params.get("visit"):
            rows = rows.filter(visit__code=visit)
        if (since := updated_since(self.request)) is not None:
            rows = rows.filter(updated_at__gte=since)
        return rows


INSTANCE = OpenApiParameter(
    "instance", int, description="A repeatable form's instance (its id); absent: a new one."
)
# What the address takes (<int:repeat>, digits only): a negative number is no API address.
REPEAT = OpenApiParameter(
    "repeat", {"type": "integer", "minimum": 0}, OpenApiParameter.PATH,
    description="The visit's occurrence: 1, or the number of a repeated unscheduled visit.",
)  # fmt: skip


@extend_schema(tags=["form data"])
class FormInstance(ApiView):
    """One form of one visit: read it, or save it through the same service as the screen."""

    def _where(self, request, study_code, subject_code, visit_code, repeat, form_code):
        study = study_for(request.user, study_code)
        patient = patient_for(request.user, study, subject_code)
        visit = get_object_or_404(
            Visit.objects.visible_to(request.user).select_related("patient__protocol_version"),
            patient=patient, code=visit_code, repeat=repeat,
        )  # fmt: skip
        return visit, _form_model(study, form_code)

    def _instance_id(self, request):
        text = request.query_params.get("instance")
        if text is None:
            return None
        if not text.isdigit():
            raise ValidationError({"instance": _("Instance: the id of a saved instance.")})
        return int(text)

    @extend_schema(parameters=[REPEAT, INSTANCE], responses={200: FormDataSerializer, **LIST})
    def get(self, request, study_code, subject_code, visit_code, repeat, form_code):
        visit, _model = self._where(
            request, study_code, subject_code, visit_code, repeat, form_code
        )
        try:
            instance = crf_for_visit(
                visit=visit, form_code=form_code, instance_id=self._instance_id(request)
            )
        except FormNotInVisit:
            instance = None
        if instance is None:
            return Response(error_body(_("This form has not been saved yet.")), 404)
        return Response(form_representation(instance))

    @extend_schema(
        parameters=[REPEAT, INSTANCE],
        request=FormWriteSerializer,
        responses={
            200: FormDataSerializer, 201: FormDataSerializer,
            409: OpenApiResponse(StaleSerializer, description="Saved by someone else since."),
            **refusals(400, 401, 403, 404, 429),
        },
    )  # fmt: skip
    def put(self, request, study_code, subject_code, visit_code, repeat, form_code):
        visit, model = self._where(request, study_code, subject_code, visit_code, repeat, form_code)
        body = FormWriteSerializer(data=request.data, context={"model": model})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        instance_id = self._instance_id(request)
        values = values_from_json(model, data["values"])
        version = data.get("version")
        try:
            instance = crf_save(
                visit=visit,
                form_code=form_code,
                values=values,
                by=request.user,
                expected_version=version,
                reason=data.get("reason", ""),
                confirmed=frozenset(data.get("confirmed_warnings", [])),
                instance_id=instance_id,
            )
        except FormNotInVisit:
            return Response(
                error_body(_("Visit %(visit)s does not take the form %(form)s.")
                           % {"visit": visit.code, "form": form_code}),
                404,
            )  # fmt: skip
        except StaleVersion as stale:
            current = crf_for_visit(visit=visit, form_code=form_code, instance_id=instance_id)
            return stale_response(
                stale.label, version,
                current=form_representation(current) if current is not None else {},
                yours={"version": version, "values": data["values"]},
            )  # fmt: skip
        except WarningsPending as pending:
            messages = [w.message for w in pending.warnings]
            body = error_body(
                _("Confirm these unusual values: send their codes in confirmed_warnings."),
                {"confirmed_warnings": messages},
            )
            body["warnings"] = [{"code": w.code, "message": w.message} for w in pending.warnings]
            return Response(body, 400)
        created = instance.version == 1 and not version
        return Response(form_representation(instance), 201 if created else 200)


def not_found(request, *args, **kwargs):
    """Any other address under /api/: the API's own 404, in JSON, not the site's page."""
    return JsonResponse(error_body(_("No such address in the API: see /api/docs/.")), status=404)


@extend_schema(exclude=True)  # the schema does not describe itself
class Schema(SpectacularAPIView):
    """The OpenAPI schema in English, whatever the reader's language: our descriptions are
    written in English, and DRF's own would otherwise come in the site's French."""

    def get(self, request, *args, **kwargs):
        with translation.override("en"):
            return super().get(request, *args, **kwargs)
