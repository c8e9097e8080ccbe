"""The review as a client sees it: queries (read; the site answers), the source data
verification of each form instance and the signatures (read)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response

from ecrf.api.auth import AuditedApiMixin
from ecrf.api.views import LIST, READ, SITE, ApiView, refusals, site_filter
from ecrf.patients.models import FormIndexEntry
from ecrf.patients.selectors import study_for
from ecrf.review.models import Query, Signature
from ecrf.review.queries import query_answer
from ecrf.review.states import QueryStatus


class QueryMessageSerializer(serializers.Serializer):
    kind = serializers.CharField()
    text = serializers.CharField()
    at = serializers.DateTimeField()
    by = serializers.CharField(source="by.username", allow_null=True)


class QuerySerializer(serializers.ModelSerializer):
    patient = serializers.CharField(source="patient.subject_code")
    site = serializers.CharField(source="patient.site.code")
    visit = serializers.CharField(source="visit.code", allow_null=True, default=None)
    form = serializers.CharField(source="entry.form_code", allow_null=True, default=None)
    messages = QueryMessageSerializer(many=True, source="thread")

    class Meta:
        model = Query
        fields = [
            "id", "patient", "site", "visit", "form", "field", "status", "origin", "rule",
            "opened_at", "closed_at", "messages",
        ]  # fmt: skip


def _queries(user, study):
    return (
        Query.objects.visible_to(user)
        .filter(patient__study=study)
        .select_related("patient__site", "visit", "entry")
        .prefetch_related("messages__by")
    )


QUERY_STATUS = OpenApiParameter(
    "status", str, enum=list(QueryStatus.values), description="Only the queries in this state."
)


def _with_thread(queries):
    for query in queries:
        query.thread = sorted(query.messages.all(), key=lambda m: (m.at, m.pk))
    return queries


@extend_schema(
    tags=["review"], parameters=[SITE, QUERY_STATUS],
    responses={200: QuerySerializer(many=True), **LIST},
)  # fmt: skip
class QueryList(AuditedApiMixin, generics.ListAPIView):
    """The study's queries at your sites, with their threads."""

    serializer_class = QuerySerializer

    def get_queryset(self):
        study = study_for(self.request.user, self.kwargs["study_code"])
        rows = _queries(self.request.user, study)
        params = self.request.query_params
        rows = site_filter(self.request, rows, "patient__site__code")
        if (status := params.get("status")) is not None:
            if status not in QueryStatus.values:
                raise ValidationError(
                    {"status": _("Status: one of %s.") % ", ".join(QueryStatus.values)}
                )
            rows = rows.filter(status=status)
        return rows

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return _with_thread(page) if page is not None else None


class AnswerSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=4000, help_text="The site's explanation.")


@extend_schema(tags=["review"])
class QueryDetail(ApiView):
    """One query and its thread."""

    @extend_schema(responses={200: QuerySerializer, **READ})
    def get(self, request, study_code, query_id: int):
        study = study_for(request.user, study_code)
        query = get_object_or_404(_queries(request.user, study), pk=query_id)
        return Response(QuerySerializer(_with_thread([query])[0]).data)


@extend_schema(tags=["review"])
class QueryAnswer(ApiView):
    """The site answers a query with an explanation; it then waits for the reviewer."""

    @extend_schema(
        request=AnswerSerializer,
        responses={200: QuerySerializer, **refusals(400, 401, 403, 404, 429)},
    )
    def post(self, request, study_code, query_id: int):
        study = study_for(request.user, study_code)
        query = get_object_or_404(_queries(request.user, study), pk=query_id)
        body = AnswerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        query_answer(by=request.user, query=query, text=body.validated_data["text"])
        query = _queries(request.user, study).get(pk=query.pk)
        return Response(QuerySerializer(_with_thread([query])[0]).data)


class SdvSerializer(serializers.ModelSerializer):
    """A form instance's source data verification: the version it applies to and its state."""

    patient = serializers.CharField(source="patient.subject_code")
    site = serializers.CharField(source="patient.site.code")
    visit = serializers.CharField(source="visit.code", allow_null=True, default=None)
    form = serializers.CharField(source="form_code")
    verified = serializers.SerializerMethodField()

    class Meta:
        model = FormIndexEntry
        fields = [
            "id", "patient", "site", "visit", "form", "key", "status", "version",
            "review_state", "review_version", "verified", "verified_at", "updated_at",
        ]  # fmt: skip

    def get_verified(self, entry) -> bool:
        return entry.review_state == "verified" and entry.review_version == entry.version


@extend_schema(
    tags=["review"], parameters=[SITE], responses={200: SdvSerializer(many=True), **LIST}
)
class SdvList(AuditedApiMixin, generics.ListAPIView):
    """Every saved form instance of the study at your sites, and how far it is verified."""

    serializer_class = SdvSerializer

    def get_queryset(self):
        study = study_for(self.request.user, self.kwargs["study_code"])
        rows = (
            FormIndexEntry.objects.visible_to(self.request.user)
            .filter(patient__study=study)
            .select_related("patient__site", "visit")
        )
        rows = site_filter(self.request, rows, "patient__site__code")
        return rows


class SignatureSerializer(serializers.ModelSerializer):
    patient = serializers.CharField(source="patient.subject_code")
    site = serializers.CharField(source="patient.site.code")
    visit = serializers.CharField(source="visit.code", allow_null=True, default=None)
    signer = serializers.CharField(source="signer.username")

    class Meta:
        model = Signature
        fields = [
            "id", "patient", "site", "visit", "signer", "printed_name", "meaning",
            "signed_at", "digest", "voided_at",
        ]  # fmt: skip


@extend_schema(
    tags=["review"], parameters=[SITE], responses={200: SignatureSerializer(many=True), **LIST}
)
class SignatureList(AuditedApiMixin, generics.ListAPIView):
    """The investigators' signatures of visits and casebooks at your sites (voided ones
    with the time they were voided)."""

    serializer_class = SignatureSerializer

    def get_queryset(self):
        study = study_for(self.request.user, self.kwargs["study_code"])
        rows = (
            Signature.objects.visible_to(self.request.user)
            .filter(patient__study=study)
            .select_related("patient__site", "visit", "signer")
        )
        rows = site_filter(self.request, rows, "patient__site__code")
        return rows
