"""Drive the data-entry screens like an investigator does, through the test client."""

from __future__ import annotations

from datetime import date

from django.urls import reverse

from ecrf.crfs.models import form_model
from ecrf.patients.models import Patient, Visit
from ecrf.scoring import mrss as mrss_scoring
from ecrf.scoring import sle2019, ssc2013


def iso(day: date) -> str:
    return day.isoformat()


def screen(client, study, *, site: str, screening_date: date, group: str = "") -> Patient:
    data = {"site": site, "screening_date": iso(screening_date)}
    if group:
        data["group"] = group
    response = client.post(reverse("patients:create", args=[study.code]), data)
    assert response.status_code == 302, response.context["form"].errors
    return Patient.objects.get(study=study, subject_code=response.url.rstrip("/").split("/")[-1])


def visit_url(patient: Patient, code: str, repeat: int = 1) -> str:
    return reverse("crfs:visit", args=[patient.study.code, patient.subject_code, code, repeat])


def date_visit(client, patient: Patient, code: str, day: date, **deviation) -> object:
    visit = patient.visits.get(code=code)
    return client.post(
        visit_url(patient, code),
        {"visit_date": iso(day), "version": visit.version, **deviation},
    )


def fill(client, patient: Patient, code: str, form_code: str, data: dict, **extra):
    """POST a form; returns the response (302 when saved)."""
    visit = patient.visits.get(code=code)
    instance = form_model(form_code).objects.filter(visit=visit).first()
    url = reverse("crfs:form", args=[patient.study.code, patient.subject_code, code, 1, form_code])
    payload = {"version": instance.version if instance else 0, **data, **extra}
    return client.post(url, payload)


def saved(response) -> None:
    if response.status_code != 302:
        form = response.context.get("form") if response.context else None
        raise AssertionError(
            f"not saved ({response.status_code}): {form.errors if form else response.content[:500]}"
        )


def visit_status(patient: Patient, code: str) -> str:
    return Visit.objects.get(patient=patient, code=code).status


def mrss_data(day: date, value: int, assessor: str = "Dr Martin") -> dict:
    return {"exam_date": iso(day), "assessor": assessor, **dict.fromkeys(mrss_scoring.AREAS, value)}


def dlqi_data(answer: str = "a_little") -> dict:
    data = {f"q{i}": answer for i in (1, 2, 3, 4, 5, 6, 8, 9, 10)}
    return {**data, "q7a": "no", "q7b": "a_little"}


def haq_data(item: int = 1) -> dict:
    from ecrf.scoring import haq

    data = dict.fromkeys(haq.ITEMS, item)
    data.update(dict.fromkeys(haq.VAS_SCALES, 30))
    return data


def labs_data(day: date) -> dict:
    return {
        "sample_date": iso(day),
        "hemoglobin_g_dl": "13.1",
        "neutrophils_x10e9_l": "4.2",
        "platelets_x10e9_l": "250",
        "bilirubin_umol_l": "10",
        "bilirubin_umol_l_uln": "17",
        "ast_u_l": "25",
        "ast_u_l_uln": "40",
        "alt_u_l": "30",
        "alt_u_l_uln": "45",
        "creatinine_umol_l": "70",
        "creatinine_umol_l_uln": "100",
    }


def form_url(patient: Patient, code: str, form_code: str, repeat: int = 1, instance=None) -> str:
    if instance is not None:
        return reverse(
            "crfs:form_instance",
            args=[patient.study.code, patient.subject_code, code, repeat, form_code, instance.pk],
        )
    return reverse(
        "crfs:form", args=[patient.study.code, patient.subject_code, code, repeat, form_code]
    )


def add(client, patient: Patient, code: str, form_code: str, data: dict, repeat: int = 1):
    """POST a new instance of a repeatable form (one per culture condition)."""
    return client.post(form_url(patient, code, form_code, repeat), {"version": 0, **data})


def enrol(client, patient: Patient, day0: date):
    return client.post(
        reverse("patients:enrol", args=[patient.study.code, patient.subject_code]),
        {"day0_date": iso(day0)},
    )


def flashed(response) -> list[str]:
    """The messages a redirecting view left for the next page."""
    from django.contrib.messages import get_messages

    return [str(m) for m in get_messages(response.wsgi_request)]


def checklist(patient: Patient, **overrides) -> dict:
    """Eligibility answers the eligible way for the patient's group, with overrides."""
    criteria = patient.protocol_version.protocol.eligibility_for(patient.group or None)
    answers = {f"criterion_{c.id}": "yes" if c.kind == "inclusion" else "no" for c in criteria}
    return {**answers, **{f"criterion_{k}": v for k, v in overrides.items()}}


MEDICAL_HISTORY = {
    "ssc_type": "systemic",
    "diagnosis_year": "2019",
    **dict.fromkeys(
        [
            "en_coup_de_sabre",
            "ongoing_cancer",
            "uncontrolled_diabetes",
            "chronic_kidney_failure",
            "chronic_hepatitis",
            "hiv_infection",
        ],
        "false",
    ),
}


def rct_pre_inclusion(
    client, patient: Patient, day: date, *, mrss: dict | None = None, answers: dict | None = None
) -> None:
    """Date SCR and fill its forms for an eligible woman without childbearing potential."""
    saved(date_visit(client, patient, "SCR", day))
    consent = {
        "consent_date": iso(day),
        "consent_version": "v2.1",
        "signed_by_investigator": "true",
    }
    saved(fill(client, patient, "SCR", "consent", consent))
    demographics = {"birth_year": "1968", "sex": "F", "childbearing_potential": "false"}
    saved(fill(client, patient, "SCR", "demographics", demographics))
    saved(fill(client, patient, "SCR", "medical_history", MEDICAL_HISTORY))
    saved(fill(client, patient, "SCR", "mrss", mrss or mrss_data(day, 2)))
    echo = {"exam_date": iso(day), "lvef_pct": "62"}
    saved(fill(client, patient, "SCR", "echocardiography", echo))
    saved(fill(client, patient, "SCR", "safety_labs", labs_data(day)))
    saved(fill(client, patient, "SCR", "eligibility", answers or checklist(patient)))


def rct_m0(client, patient: Patient, day0: date, kit: str) -> None:
    """Fill the inclusion visit M0 (dated day 0 by enrolment)."""
    saved(fill(client, patient, "M0", "mrss", mrss_data(day0, 2)))
    saved(fill(client, patient, "M0", "dlqi", dlqi_data()))
    saved(fill(client, patient, "M0", "haq", haq_data()))
    saved(fill(client, patient, "M0", "safety_labs", labs_data(day0)))
    biopsy = {"biopsy_date": iso(day0), "body_site": "forearm", "dermal_thickness_um": "2100"}
    saved(fill(client, patient, "M0", "skin_biopsy", biopsy))
    dispensing = {
        "kit_number": kit,
        "dispensing_date": iso(day0),
        "units_dispensed": "720",
        "expected_units_per_day": "4",
    }
    saved(fill(client, patient, "M0", "drug_dispensing", dispensing))


# -- Sclero-JAK (NCT04206644) ------------------------------------------------------------


def ssc_findings(classified: bool = True) -> dict:
    findings = dict.fromkeys(ssc2013.KEYS, "false")
    if classified:
        findings["skin_thickening_proximal_mcp"] = "true"
    return findings


def sle_findings() -> dict:
    # ANA, acute cutaneous lupus (6) and anti-dsDNA (6): 12 points with a clinical criterion.
    findings = dict.fromkeys(sle2019.KEYS, "false")
    findings.update(ana_positive="true", acute_cutaneous_lupus="true", anti_dsdna="true")
    return findings


def clinical(subset: str = "diffuse") -> dict:
    return {
        "ssc_subset": subset,
        "anti_centromere": "false",
        "anti_topoisomerase": "true",
        "anti_rna_pol3": "false",
        "mrss_total": "22",
        "digital_ulcers": "past",
        "ild_on_ct": "true",
        "pah_on_echo": "false",
        "disease_duration_years": "4.5",
    }


def cohort_inclusion(
    client, study, group: str, day: date, *, hemoglobin: str = "12.4", classified: bool = True
) -> Patient:
    """Screen a participant and fill V0 as the investigator does; returns the patient."""
    patient = screen(client, study, site="REN", screening_date=day, group=group)
    assert [v.code for v in patient.visits.all()] == ["V0"]
    saved(date_visit(client, patient, "V0", day))
    saved(
        fill(
            client,
            patient,
            "V0",
            "consent",
            {"consent_date": iso(day), "consent_version": "2.0", "signed_by_investigator": "true"},
        )
    )
    saved(
        fill(
            client,
            patient,
            "V0",
            "demographics",
            {"birth_year": "1971", "sex": "F", "childbearing_potential": "false"},
        )
    )
    if group == "SSC":
        saved(fill(client, patient, "V0", "ssc_classification", ssc_findings(classified)))
        saved(fill(client, patient, "V0", "clinical_characteristics", clinical()))
    if group == "SLE":
        saved(fill(client, patient, "V0", "sle_classification", sle_findings()))
        saved(fill(client, patient, "V0", "clinical_characteristics", clinical("")))
    saved(
        fill(
            client,
            patient,
            "V0",
            "safety_labs",
            {"sample_date": iso(day), "hemoglobin_g_dl": hemoglobin},
        )
    )
    saved(
        fill(
            client,
            patient,
            "V0",
            "blood_sample",
            {"sample_date": iso(day), "serum_aliquots": "6", "pbmc_isolated": "true"},
        )
    )
    saved(fill(client, patient, "V0", "eligibility", checklist(patient)))
    assert visit_status(patient, "V0") == "complete"
    return patient


def cytokines(condition: str, **extra) -> dict:
    data = {
        "condition": condition,
        "ccl18_pg_ml": "1830.50",
        "pdgfbb_pg_ml": "412",
        "cxcl10_pg_ml": "95.2",
        "cxcl4_pg_ml": "2200",
        # IL-6 under the assay's limit of detection: ticked with its limit, no value.
        "il6_pg_ml": "",
        "il6_below_lod": "on",
        "il6_lod_pg_ml": "3.1",
    }
    if "ruxolitinib" in condition:
        data["ruxolitinib_nm"] = "1000"
    return {**data, **extra}


def flow(condition: str, **extra) -> dict:
    data = {"condition": condition}
    for i, marker in enumerate(("cd204", "cd206", "cd163", "cd86", "hla_dr", "tlr4")):
        data[f"{marker}_pos_pct"] = str(40 + i)
        data[f"{marker}_mfi"] = str(1500 + 100 * i)
    return {**data, **extra}
