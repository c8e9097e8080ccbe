"""Adverse events and SAE reports: read at your sites; recorded and changed through the
safety services (the role, the locks, the rules of ae_problems, the SAE clock)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response

from ecrf.api.auth import AuditedApiMixin
from ecrf.api.errors import stale_response
from ecrf.api.serializers import StaleSerializer, json_value
from ecrf.api.values import values_from_json
from ecrf.api.views import (
    LIST,
    READ,
    SITE,
    UPDATED_SINCE,
    ApiView,
    refusals,
    site_filter,
    updated_since,
)
from ecrf.core.errors import StaleVersion
from ecrf.patients.selectors import patient_for, study_for
from ecrf.safety.models import AdverseEvent, SaeReport
from ecrf.safety.rules import AE_FIELDS
from ecrf.safety.services.adverse_events import ae_create, ae_update
from ecrf.safety.services.sae_reports import sae_follow_up, sae_submit_initial

SERIOUS = OpenApiParameter("serious", bool, description="Only the serious (true) or not (false).")


def ae_representation(event: AdverseEvent) -> dict:
    fields = {f.name: f for f in AdverseEvent._meta.concrete_fields}
    reports = sorted(event.sae_reports.all(), key=lambda r: r.number)
    return {
        "patient": event.patient.subject_code,
        "site": event.patient.site.code,
        "number": event.number,
        "version": event.version,
        "created_at": event.created_at.isoformat(),
        "updated_at": event.updated_at.isoformat(),
        "values": {name: json_value(fields[name], getattr(event, name)) for name in AE_FIELDS},
        "sae_reports": [
            {
                "number": r.number,
                "due_at": r.due_at.isoformat(),
                "submitted_at": r.submitted_at.isoformat() if r.submitted_at else None,
                "acknowledged_at": r.acknowledged_at.isoformat() if r.acknowledged_at else None,
            }
            for r in reports
        ],
    }


class SaeSummarySerializer(serializers.Serializer):
    number = serializers.IntegerField()
    due_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)


class AdverseEventSerializer(serializers.Serializer):
    """An adverse event of a patient's log: its answers under `values`, its SAE reports."""

    patient = serializers.CharField()
    site = serializers.CharField()
    number = serializers.IntegerField()
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    values = serializers.DictField()
    sae_reports = SaeSummarySerializer(many=True)

    def to_representation(self, instance):
        return ae_representation(instance)


class AdverseEventWriteSerializer(serializers.Serializer):
    """A new event's answers, or a change: the answers it changes, the version read and
    the reason for the change."""

    version = serializers.IntegerField(min_value=1, required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)
    values = serializers.DictField()


def _values(data: dict) -> dict:
    if unknown := sorted(set(data) - set(AE_FIELDS)):
        raise ValidationError(
            {"non_field_errors": _("Not fields of an adverse event: %s.") % ", ".join(unknown)}
        )
    return values_from_json(AdverseEvent, data, answers=AE_FIELDS)


def _events(user, study):
    return (
        AdverseEvent.objects.visible_to(user)
        .filter(patient__study=study)
        .select_related("patient__site")
        .prefetch_related("sae_reports")
    )


@extend_schema(
    tags=["safety"], parameters=[SITE, SERIOUS, UPDATED_SINCE],
    responses={200: AdverseEventSerializer(many=True), **LIST},
)  # fmt: skip
class AdverseEventList(AuditedApiMixin, generics.ListAPIView):
    """Every adverse event of the study at your sites."""

    serializer_class = AdverseEventSerializer

    def get_queryset(self):
        study = study_for(self.request.user, self.kwargs["study_code"])
        rows = _events(self.request.user, study)
        params = self.request.query_params
        rows = site_filter(self.request, rows, "patient__site__code")
        if (serious := params.get("serious")) is not None:
            if serious not in ("true", "false"):
                raise ValidationError({"serious": _("Serious: true or false.")})
            rows = rows.filter(serious=serious == "true")
        if (since := updated_since(self.request)) is not None:
            rows = rows.filter(updated_at__gte=since)
        return rows


WRITE_REFUSALS = refusals(400, 401, 403, 404, 429)


@extend_schema(tags=["safety"])
class PatientAdverseEvents(ApiView):
    """A patient's log: read it, or record a new event."""

    @extend_schema(responses={200: AdverseEventSerializer(many=True), **READ})
    def get(self, request, study_code, subject_code):
        study = study_for(request.user, study_code)
        patient = patient_for(request.user, study, subject_code)
        events = _events(request.user, study).filter(patient=patient).order_by("number")
        return Response([ae_representation(e) for e in events])

    @extend_schema(
        request=AdverseEventWriteSerializer,
        responses={201: AdverseEventSerializer, **WRITE_REFUSALS},
    )
    def post(self, request, study_code, subject_code):
        study = study_for(request.user, study_code)
        patient = patient_for(request.user, study, subject_code)
        body = AdverseEventWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        event = ae_create(
            patient=patient, by=request.user, values=_values(body.validated_data["values"])
        )
        return Response(ae_representation(_events(request.user, study).get(pk=event.pk)), 201)


@extend_schema(tags=["safety"])
class AdverseEventDetail(ApiView):
    """One adverse event: read it, or change it (the version read and a reason)."""

    def _event(self, request, study_code, subject_code, number):
        study = study_for(request.user, study_code)
        patient = patient_for(request.user, study, subject_code)
        return study, get_object_or_404(
            _events(request.user, study), patient=patient, number=number
        )

    @extend_schema(responses={200: AdverseEventSerializer, **READ})
    def get(self, request, study_code, subject_code, number):
        _study, event = self._event(request, study_code, subject_code, number)
        return Response(ae_representation(event))

    @extend_schema(
        request=AdverseEventWriteSerializer,
        responses={
            200: AdverseEventSerializer,
            409: OpenApiResponse(StaleSerializer, description="Changed by someone else since."),
            **WRITE_REFUSALS,
        },
    )
    def put(self, request, study_code, subject_code, number):
        study, event = self._event(request, study_code, subject_code, number)
        body = AdverseEventWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data.get("version") is None:
            raise ValidationError({"version": _("Version: the version of the event you read.")})
        current = {name: getattr(event, name) for name in AE_FIELDS}
        values = {**current, **_values(data["values"])}
        try:
            event = ae_update(
                event=event, by=request.user, values=values,
                expected_version=data["version"], reason=data.get("reason", ""),
            )  # fmt: skip
        except StaleVersion as stale:
            return stale_response(
                stale.label, data["version"],
                current=ae_representation(_events(request.user, study).get(pk=event.pk)),
                yours={"version": data["version"], "values": request.data.get("values")},
            )  # fmt: skip
        return Response(ae_representation(_events(request.user, study).get(pk=event.pk)))


class SaeReportSerializer(serializers.Serializer):
    patient = serializers.CharField(source="adverse_event.patient.subject_code")
    site = serializers.CharField(source="adverse_event.patient.site.code")
    adverse_event = serializers.IntegerField(source="adverse_event.number")
    number = serializers.IntegerField()
    aware_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    narrative = serializers.CharField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)


@extend_schema(
    tags=["safety"], parameters=[SITE],
    responses={200: SaeReportSerializer(many=True), **LIST},
)  # fmt: skip
class SaeReportList(AuditedApiMixin, generics.ListAPIView):
    """The study's SAE reports at your sites: initial and follow-ups, with their deadlines."""

    serializer_class = SaeReportSerializer

    def get_queryset(self):
        study = study_for(self.request.user, self.kwargs["study_code"])
        rows = (
            SaeReport.objects.visible_to(self.request.user)
            .filter(adverse_event__patient__study=study)
            .select_related("adverse_event__patient__site")
        )
        rows = site_filter(self.request, rows, "adverse_event__patient__site__code")
        return rows


class SaeSubmitSerializer(serializers.Serializer):
    """The investigator's password, re-entered as on the screen (it counts towards the
    lockout), and the narrative; a follow-up may say when the news became known."""

    password = serializers.CharField(max_length=4096, trim_whitespace=False)
    narrative = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    aware_at = serializers.DateTimeField(required=False, allow_null=True)


SUBMIT_REFUSALS = refusals(400, 401, 403, 404, 429)


@extend_schema(tags=["safety"])
class SaeReportSubmit(ApiView):
    """Submit the event's pending initial SAE report, or, once it is submitted, a numbered
    follow-up: the sponsor's safety contacts are emailed, as from the screen."""

    @extend_schema(
        request=SaeSubmitSerializer, responses={201: SaeReportSerializer, **SUBMIT_REFUSALS}
    )
    def post(self, request, study_code, subject_code, number):
        study = study_for(request.user, study_code)
        patient = patient_for(request.user, study, subject_code)
        event = get_object_or_404(_events(request.user, study), patient=patient, number=number)
        body = SaeSubmitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        pending = event.sae_reports.filter(number=0, submitted_at__isnull=True).first()  # initial
        if pending is not None:
            report = sae_submit_initial(
                report=pending, by=request.user, password=data["password"],
                narrative=data.get("narrative", ""), request=request._request,
            )  # fmt: skip
        else:
            report = sae_follow_up(
                event=event, by=request.user, password=data["password"],
                narrative=data.get("narrative", ""), aware_at=data.get("aware_at"),
                request=request._request,
            )  # fmt: skip
        report = SaeReport.objects.select_related("adverse_event__patient__site").get(pk=report.pk)
        return Response(SaeReportSerializer(report).data, 201)
