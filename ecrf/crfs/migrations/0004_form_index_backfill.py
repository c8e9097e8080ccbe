"""The form index entries of the forms saved before crf_save kept the index."""

from django.db import migrations

# Every case report form model with its form code; the culture forms are keyed by condition.
FORMS = {
    "Demographics": "demographics",
    "Consent": "consent",
    "MedicalHistory": "medical_history",
    "Eligibility": "eligibility",
    "Mrss": "mrss",
    "Echocardiography": "echocardiography",
    "SafetyLabs": "safety_labs",
    "PregnancyTest": "pregnancy_test",
    "SkinBiopsy": "skin_biopsy",
    "Dlqi": "dlqi",
    "Haq": "haq",
    "DrugDispensing": "drug_dispensing",
    "DrugAccountability": "drug_accountability",
    "ClinicalCharacteristics": "clinical_characteristics",
    "SscClassification": "ssc_classification",
    "SleClassification": "sle_classification",
    "BloodSample": "blood_sample",
    "MdmCytokines": "mdm_cytokines",
    "MdmFlow": "mdm_flow",
}
KEYED = {"MdmCytokines", "MdmFlow"}


def backfill(apps, schema_editor):
    FormIndexEntry = apps.get_model("patients", "FormIndexEntry")
    for name, code in FORMS.items():
        model = apps.get_model("crfs", name)
        columns = ["pk", "patient_id", "visit_id", "status", "version", "updated_at"]
        rows = model.objects.values_list(*columns, *(["condition"] if name in KEYED else []))
        FormIndexEntry.objects.bulk_create(
            [
                FormIndexEntry(
                    form_code=code,
                    object_id=pk,
                    patient_id=patient_id,
                    visit_id=visit_id,
                    status=status,
                    version=version,
                    updated_at=updated_at,
                    key=(key[0] or "") if key else "",
                )
                for pk, patient_id, visit_id, status, version, updated_at, *key in rows.iterator()
            ],
            batch_size=1000,
            ignore_conflicts=True,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("crfs", "0003_patient_facts_backfill"),
        ("patients", "0005_form_index"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
