"""The form index entries of the adverse events and SAE reports recorded before the
safety services kept the index."""

from django.db import migrations


def backfill(apps, schema_editor):
    FormIndexEntry = apps.get_model("patients", "FormIndexEntry")
    AdverseEvent = apps.get_model("safety", "AdverseEvent")
    SaeReport = apps.get_model("safety", "SaeReport")
    events = [
        FormIndexEntry(
            form_code="adverse_event",
            object_id=pk,
            patient_id=patient_id,
            status="complete",
            version=version,
            updated_at=updated_at,
        )
        for pk, patient_id, version, updated_at in AdverseEvent.objects.values_list(
            "pk", "patient_id", "version", "updated_at"
        ).iterator()
    ]
    reports = [
        FormIndexEntry(
            form_code="sae_report",
            object_id=report.pk,
            patient_id=report.adverse_event.patient_id,
            status="complete" if report.submitted_at else "in_progress",
            version=1,
            updated_at=report.acknowledged_at or report.submitted_at or report.created_at,
        )
        for report in SaeReport.objects.select_related("adverse_event").iterator()
    ]
    FormIndexEntry.objects.bulk_create(events + reports, batch_size=1000, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("safety", "0002_serious_aware_at"),
        ("patients", "0005_form_index"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
