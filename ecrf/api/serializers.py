"""What the API shows of each resource, and the body of a form's write."""

from __future__ import annotations

from functools import cache

from django.db import models
from rest_framework import serializers

from ecrf.crfs.base import CrfBase
from ecrf.patients.models import Patient, Visit
from ecrf.studies.models import Site, Study


class ErrorSerializer(serializers.Serializer):
    """Every refusal: a sentence, and each field's messages (named by their label)."""

    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class StaleSerializer(ErrorSerializer):
    """409: the form as it is now, beside what you sent, so that nothing typed is lost."""

    current = serializers.DictField()
    yours = serializers.DictField()


class StudySerializer(serializers.ModelSerializer):
    class Meta:
        model = Study
        fields = ["code", "acronym", "title", "sponsor", "design", "blinded", "target_enrolment"]


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ["code", "name", "city", "country", "timezone"]


class VisitSerializer(serializers.ModelSerializer):
    class Meta:
        model = Visit
        fields = [
            "code", "repeat", "sequence", "status", "target_date", "earliest_date",
            "latest_date", "visit_date", "version",
        ]  # fmt: skip


class PatientSerializer(serializers.ModelSerializer):
    site = serializers.CharField(source="site.code")
    kit_number = serializers.CharField(source="allocation.kit_number", allow_null=True)
    # Not a method field: the schema lists those as always present, and a blinded user's
    # patients come without it.
    arm = serializers.CharField(
        source="allocation.arm",
        required=False,
        allow_null=True,
        help_text="Only for users who may see the allocation: absent for a blinded user.",
    )

    class Meta:
        model = Patient
        fields = [
            "subject_code", "site", "status", "group", "screening_date", "day0_date",
            "end_date", "kit_number", "arm",
        ]  # fmt: skip

    def to_representation(self, patient):
        data = super().to_representation(patient)
        if not self.context.get("sees_allocation"):
            data.pop("arm", None)
        return data


class PatientDetailSerializer(PatientSerializer):
    visits = VisitSerializer(many=True, read_only=True, source="visits_list")

    class Meta(PatientSerializer.Meta):
        fields = [*PatientSerializer.Meta.fields, "visits"]


def json_value(field: models.Field, value):
    if value is None:
        return None
    if isinstance(field, models.DecimalField):
        return str(value)
    if isinstance(field, (models.DateField, models.DateTimeField)):
        return value.isoformat()
    return value


def derived_fields(model: type[CrfBase]) -> list[str]:
    """What the form computes from its answers (a score, a total): read only."""
    base = {f.name for f in CrfBase._meta.get_fields()} | {"id"}
    answers = set(model.answer_fields())
    return [
        f.name
        for f in model._meta.concrete_fields
        if f.name not in base and f.name not in answers and not f.auto_created
    ]


@cache
def _layout(model: type[CrfBase]) -> tuple[dict, tuple[str, ...], tuple[str, ...]]:
    """A form's fields by name, its answers and its derived values: once per model, not
    once per row of a page of a thousand."""
    fields = {f.name: f for f in model._meta.concrete_fields}
    return fields, tuple(model.answer_fields()), tuple(derived_fields(model))


def form_representation(instance: CrfBase) -> dict:
    model = type(instance)
    fields, answers, derived = _layout(model)
    visit = instance.visit
    return {
        "id": instance.pk,
        "form": model.FORM_CODE,
        "patient": instance.patient.subject_code,
        "site": instance.patient.site.code,
        "visit": visit.code if visit else None,
        "repeat": visit.repeat if visit else None,
        "status": instance.status,
        "version": instance.version,
        "entered_at": instance.entered_at.isoformat(),
        "updated_at": instance.updated_at.isoformat(),
        "values": {n: json_value(fields[n], getattr(instance, n)) for n in answers},
        "derived": {n: json_value(fields[n], getattr(instance, n)) for n in derived},
    }


class FormDataSerializer(serializers.Serializer):
    """A saved form instance: its answers under `values`, what it computes under `derived`."""

    id = serializers.IntegerField()
    form = serializers.CharField()
    patient = serializers.CharField()
    site = serializers.CharField()
    visit = serializers.CharField(allow_null=True)
    repeat = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=CrfBase.Status.choices)
    version = serializers.IntegerField()
    entered_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    values = serializers.DictField()
    derived = serializers.DictField()

    def to_representation(self, instance):
        return form_representation(instance)


class FormWriteSerializer(serializers.Serializer):
    """A form's save: the answers it changes, the version read (0 or absent for a new form),
    the reason for a change after the first save, and the warnings confirmed."""

    version = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)
    confirmed_warnings = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False
    )
    values = serializers.DictField()

    def validate_values(self, values: dict) -> dict:
        # null clears an answer (the protocol's field list calls a blank text "nullable"):
        # a text column holds "" for that, as the screens save it, never NULL.
        model = self.context.get("model")
        texts = {
            f.name
            for f in (model._meta.concrete_fields if model is not None else ())
            if isinstance(f, (models.CharField, models.TextField)) and not f.null
        }
        return {name: "" if v is None and name in texts else v for name, v in values.items()}


class ProtocolSerializer(serializers.Serializer):
    """The protocol version in force: its visits and windows, its forms and their fields."""

    version = serializers.CharField()
    effective_date = serializers.DateField()
    sha256 = serializers.CharField()
    visits = serializers.ListField(child=serializers.DictField())
    forms = serializers.ListField(child=serializers.DictField())
