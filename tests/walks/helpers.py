"""Drive the data-entry screens like an investigator does, through the test client."""

from __future__ import annotations

from datetime import date

from django.urls import reverse

from ecrf.crfs.models import form_model
from ecrf.patients.models import Patient, Visit
from ecrf.scoring import mrss as mrss_scoring


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
