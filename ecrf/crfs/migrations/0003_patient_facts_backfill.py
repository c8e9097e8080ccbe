"""The facts crf_save now keeps on the patient, from the forms saved before it did."""

from django.db import migrations


def backfill(apps, schema_editor):
    Patient = apps.get_model("patients", "Patient")
    Consent = apps.get_model("crfs", "Consent")
    Demographics = apps.get_model("crfs", "Demographics")
    consented = dict(
        Consent.objects.filter(consent_date__isnull=False)
        .order_by("patient_id", "pk")
        .values_list("patient_id", "consent_date")
        .distinct("patient_id")
    )
    potential = set(
        Demographics.objects.filter(sex="F", childbearing_potential=True).values_list(
            "patient_id", flat=True
        )
    )
    for patient in Patient.objects.filter(pk__in={*consented, *potential}):
        patient.consent_date = consented.get(patient.pk)
        patient.conditions = ["female_childbearing_potential"] if patient.pk in potential else []
        patient.save(update_fields=["consent_date", "conditions"])


class Migration(migrations.Migration):
    dependencies = [
        ("crfs", "0002_classification_field"),
        ("patients", "0004_patient_facts"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
