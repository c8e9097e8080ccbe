"""The form models: one per protocol form code, named by the data dictionary, audited."""

from __future__ import annotations

import pghistory.models
import pytest
from django.utils import translation

from ecrf.crfs.base import CrfBase
from ecrf.crfs.models import (
    FORM_MODELS,
    ClinicalCharacteristics,
    Demographics,
    Dlqi,
    DrugAccountability,
    DrugDispensing,
    Eligibility,
    Haq,
    MdmCytokines,
    MdmFlow,
    MedicalHistory,
    Mrss,
    SafetyLabs,
    SleClassification,
    SscClassification,
    form_model,
)
from ecrf.scoring import dlqi, haq, mrss, sle2019, ssc2013
from ecrf.studies.protocol import LAB_ANALYTES, ULN_ANALYTES, form_codes


def field_names(model) -> set[str]:
    return {field.name for field in model._meta.get_fields()}


def test_every_protocol_form_but_the_adverse_event_log_has_a_model():
    assert set(FORM_MODELS) == form_codes() - {"adverse_event"}
    for code, model in FORM_MODELS.items():
        assert issubclass(model, CrfBase)
        assert code == model.FORM_CODE
        assert form_model(code) is model


def test_form_models_is_read_only_and_unknown_codes_raise():
    with pytest.raises(TypeError):
        FORM_MODELS["extra"] = Mrss
    with pytest.raises(KeyError, match="adverse_event"):
        form_model("adverse_event")


@pytest.mark.parametrize("model", FORM_MODELS.values(), ids=FORM_MODELS.keys())
def test_required_and_live_fields_exist_and_live_ones_are_derived(model):
    fields = {field.name: field for field in model._meta.concrete_fields}
    assert set(model.REQUIRED_FIELDS) <= set(fields)
    for name in model.LIVE_TOTAL:
        assert not fields[name].editable


@pytest.mark.parametrize(
    ("model", "keys"),
    [
        (Mrss, {*mrss.AREAS, "exam_date", "assessor", "not_assessable_reason", "total"}),
        (Dlqi, {*dlqi.KEYS, "total", "band", "imputed_items"}),
        (Haq, {*haq.KEYS, "di", "di_without_aids", "pain_score", "global_score"}),
        (
            Haq,
            {"raynaud_score", "digital_ulcer_score", "gi_score", "breathing_score"},
        ),
        (SscClassification, {*ssc2013.KEYS, "points", "sufficient", "classification"}),
        (SleClassification, {*sle2019.KEYS, "points", "has_clinical", "classification"}),
        (
            Demographics,
            {"birth_year", "birth_month", "sex", "childbearing_potential", "initials"},
        ),
        (
            MedicalHistory,
            {
                "ssc_type",
                "diagnosis_year",
                "en_coup_de_sabre",
                "ongoing_cancer",
                "mi_date",
                "major_surgery_date",
            },
        ),
        (SafetyLabs, {"sample_date", *LAB_ANALYTES, *(f"{a}_uln" for a in ULN_ANALYTES)}),
        (DrugDispensing, {"kit_number", "dispensing_date", "units_dispensed"}),
        (DrugAccountability, {"kit_number", "units_dispensed", "units_returned", "compliance_pct"}),
        (
            ClinicalCharacteristics,
            {
                "ssc_subset",
                "anti_centromere",
                "anti_topoisomerase",
                "anti_rna_pol3",
                "mrss_total",
                "digital_ulcers",
                "ild_on_ct",
                "pah_on_echo",
                "disease_duration_years",
            },
        ),
        (
            MdmCytokines,
            {
                "condition",
                "serum_donor",
                "ruxolitinib_nm",
                "ccl18_pg_ml",
                "ccl18_below_lod",
                "ccl18_lod_pg_ml",
                "pdgfbb_pg_ml",
                "il6_pg_ml",
                "cxcl10_pg_ml",
                "cxcl4_pg_ml",
            },
        ),
        (
            MdmFlow,
            {
                f"{marker}_{measure}"
                for marker in ("cd204", "cd206", "cd163", "cd86", "hla_dr", "tlr4")
                for measure in ("pos_pct", "mfi")
            },
        ),
        (Eligibility, {"answers", "eligible", "screen_failure_reasons"}),
    ],
)
def test_fields_are_named_by_the_data_dictionary(model, keys):
    assert keys <= field_names(model)


def test_no_identifying_fields_in_demographics():
    assert not {"name", "first_name", "last_name", "birth_date", "address"} & field_names(
        Demographics
    )


def test_derived_fields_cannot_be_typed_in():
    for model, derived in [
        (Mrss, ["total"]),
        (Dlqi, ["total", "band", "imputed_items"]),
        (Haq, ["di", "di_without_aids", "pain_score", "disease_severity_score"]),
        (SscClassification, ["points", "sufficient", "classification"]),
        (SleClassification, ["points", "has_clinical", "classification"]),
        (DrugAccountability, ["compliance_pct"]),
        (Eligibility, ["eligible"]),
    ]:
        for name in derived:
            assert not model._meta.get_field(name).editable, f"{model.__name__}.{name}"


@pytest.mark.django_db
def test_saving_a_form_is_audited(world, make):
    with pghistory.context(user=world.alice.pk, reason="mRSS entered"):
        form = make(Mrss, face=1)
    form.face = 2
    form.save()
    events = list(pghistory.models.Events.objects.tracks(form).order_by("pgh_id"))
    assert [event.pgh_label for event in events] == ["insert", "update"]
    assert events[0].pgh_context["reason"] == "mRSS entered"
    assert events[1].pgh_diff["face"] == [1, 2]


@pytest.mark.django_db
def test_deleting_a_form_is_audited(make):
    form = make(Demographics, birth_year=1970, sex="F")
    pk = form.pk
    form.delete()
    labels = pghistory.models.Events.objects.filter(
        pgh_obj_model="crfs.Demographics", pgh_obj_id=str(pk)
    ).values_list("pgh_label", flat=True)
    assert sorted(labels) == ["delete", "insert"]


@pytest.mark.django_db
def test_missing_fields_follow_the_answers(make):
    demographics = make(Demographics, birth_year=1970, sex="F")
    assert demographics.missing_fields() == ["childbearing_potential"]
    demographics.childbearing_potential = False
    assert demographics.missing_fields() == []

    skin = make(Mrss, **{area: 1 for area in mrss.AREAS[:-1]}, exam_date="2026-03-02")
    assert skin.missing_fields() == ["assessor", "foot_l"]
    skin.not_assessable_reason = "left foot amputated"
    assert skin.missing_fields() == ["assessor"]

    labs = make(SafetyLabs, sample_date="2026-03-02", hemoglobin_g_dl=12, alt_u_l=30)
    assert labs.missing_fields() == ["alt_u_l_uln"]


@pytest.mark.django_db
def test_eligibility_is_complete_when_every_criterion_of_the_protocol_is_answered(make):
    form = make(Eligibility, answers={"I1": True, "E1": False})
    missing = form.missing_fields()
    assert "answers.I2" in missing and "answers.E13" in missing
    assert "answers.I1" not in missing and "answers.E1" not in missing
    protocol = form.protocol_version.protocol
    form.answers = {criterion.id: criterion.expected_answer for criterion in protocol.eligibility}
    assert form.missing_fields() == []


@pytest.mark.django_db
def test_cytokines_below_the_limit_of_detection_need_the_limit(world, make):
    from tests.crfs.conftest import make_visit

    lab = make_visit(world.ren_patients[0], code="LAB")
    values = {"ccl18_pg_ml": 1500, "pdgfbb_pg_ml": 20, "cxcl10_pg_ml": 300, "cxcl4_pg_ml": 9}
    form = make(MdmCytokines, at=lab, condition="ruxolitinib", **values, il6_below_lod=True)
    assert form.missing_fields() == ["ruxolitinib_nm", "il6_lod_pg_ml"]
    form.ruxolitinib_nm, form.il6_lod_pg_ml = 100, 3
    assert form.missing_fields() == []


@pytest.mark.parametrize("model", FORM_MODELS.values(), ids=FORM_MODELS.keys())
def test_constraint_names_start_with_the_model_name(model):
    # Written "%(class)s_<field>_<rule>"; crf_save reads the field back from the name.
    prefix = f"{model._meta.model_name}_"
    assert all(c.name.startswith(prefix) for c in model._meta.constraints)
    assert f"{prefix}visit_required" in {c.name for c in model._meta.constraints}


@pytest.mark.django_db
@translation.override("en")
def test_a_form_is_named_by_its_label_visit_and_what_tells_it_apart(world, make, visit):
    assert str(make(Mrss)) == f"modified Rodnan skin score {visit}"
    assert str(make(DrugDispensing, kit_number="K-0042")) == f"drug dispensing {visit} kit K-0042"
    assert str(Mrss()) == "modified Rodnan skin score "
    culture = MdmFlow(patient=world.ren_patients[1], condition="untreated")
    assert str(culture) == f"MDM flow cytometry {world.ren_patients[1]} untreated"
