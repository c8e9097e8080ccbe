"""NCT00479934 end to end through the web layer: screening to M12, a screen failure, a
late M3 with a deviation, a missed M1, and a randomisation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ecrf.crfs.models import Dlqi, DrugAccountability, Haq, Mrss
from ecrf.patients.models import Allocation, Deviation, Patient
from ecrf.patients.randomisation import allocation_list_generate
from tests.factories import MembershipFactory, UserFactory
from tests.walks.helpers import (
    date_visit,
    dlqi_data,
    fill,
    haq_data,
    iso,
    labs_data,
    mrss_data,
    saved,
    screen,
    visit_status,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def bxp_list(world):
    keeper = UserFactory(username="keeper")
    MembershipFactory(user=keeper, study=world.rct, role="data_manager", unblinded=True)
    return allocation_list_generate(study=world.rct, site=world.bxp, size=8, seed=7, by=keeper)


def eligibility_answers(patient: Patient, **overrides) -> dict:
    criteria = patient.protocol_version.protocol.eligibility_for(None)
    answers = {f"criterion_{c.id}": "yes" if c.kind == "inclusion" else "no" for c in criteria}
    return {**answers, **{f"criterion_{k}": v for k, v in overrides.items()}}


def pre_inclusion(client, patient: Patient, day, *, mrss_area: int = 2):
    saved(date_visit(client, patient, "SCR", day))
    saved(
        fill(
            client,
            patient,
            "SCR",
            "consent",
            {"consent_date": iso(day), "consent_version": "v2.1", "signed_by_investigator": "true"},
        )
    )
    saved(
        fill(
            client,
            patient,
            "SCR",
            "demographics",
            {
                "birth_year": "1968",
                "birth_month": "4",
                "sex": "F",
                "childbearing_potential": "false",
            },
        )
    )
    history = {
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
    saved(fill(client, patient, "SCR", "medical_history", history))
    saved(fill(client, patient, "SCR", "mrss", mrss_data(day, mrss_area)))
    saved(
        fill(client, patient, "SCR", "echocardiography", {"exam_date": iso(day), "lvef_pct": "62"})
    )
    saved(fill(client, patient, "SCR", "safety_labs", labs_data(day)))
    saved(fill(client, patient, "SCR", "eligibility", eligibility_answers(patient)))


def scheduled_forms(client, patient, code, day, *, mrss_area, kit, dispensing=False):
    saved(fill(client, patient, code, "mrss", mrss_data(day, mrss_area)))
    saved(fill(client, patient, code, "dlqi", dlqi_data()))
    saved(fill(client, patient, code, "haq", haq_data()))
    saved(fill(client, patient, code, "safety_labs", labs_data(day)))
    if dispensing:
        saved(
            fill(
                client,
                patient,
                code,
                "drug_dispensing",
                {
                    "kit_number": kit,
                    "dispensing_date": iso(day),
                    "units_dispensed": "720",
                    "expected_units_per_day": "4",
                },
            )
        )


def test_nct00479934_from_screening_to_m12(client, world, bxp_list):
    today = timezone.localdate()
    day0 = today - timedelta(days=400)
    client.force_login(world.alice)

    # Screen failure: consent, then the eligibility checklist says LVEF excludes.
    failed = screen(client, world.rct, site="BXP", screening_date=day0 - timedelta(days=25))
    response = client.post(
        reverse("patients:screen_fail", args=[world.rct.code, failed.subject_code]),
        {"reasons": "LVEF 40 % at pre-inclusion echocardiography"},
    )
    failed.refresh_from_db()
    assert response.status_code == 302
    assert failed.status == Patient.Status.SCREEN_FAILED
    assert set(failed.visits.values_list("status", flat=True)) == {"closed"}

    patient = screen(client, world.rct, site="BXP", screening_date=day0 - timedelta(days=20))
    assert list(patient.visits.values_list("code", flat=True)) == ["SCR"]

    # Nothing before consent: a form other than consent is refused until it is recorded.
    saved(date_visit(client, patient, "SCR", day0 - timedelta(days=15)))
    response = fill(client, patient, "SCR", "mrss", mrss_data(day0 - timedelta(days=15), 2))
    assert response.status_code == 200
    assert "consent" in str(response.context["form"].non_field_errors()).lower()
    assert not Mrss.objects.filter(patient=patient).exists()

    pre_inclusion(client, patient, day0 - timedelta(days=15))
    assert visit_status(patient, "SCR") == "complete"

    # Enrolment and randomisation: the next slot of the site, kit number shown, arm hidden.
    response = client.post(
        reverse("patients:enrol", args=[world.rct.code, patient.subject_code]),
        {"day0_date": iso(day0)},
    )
    patient.refresh_from_db()
    assert patient.status == Patient.Status.ENROLLED, [
        str(m) for m in response.wsgi_request._messages
    ]
    allocation = Allocation.objects.get(patient=patient)
    assert allocation.sequence == 1
    assert [v.code for v in patient.visits.order_by("sequence")] == [
        "SCR", "M0", "M1", "M3", "M6", "M12",
    ]  # fmt: skip
    detail = client.get(reverse("patients:detail", args=[world.rct.code, patient.subject_code]))
    body = detail.content.decode()
    assert allocation.kit_number in body
    assert allocation.arm not in body.replace(patient.subject_code, "")
    assert visit_status(patient, "M0") == "in_progress"

    # M0: the inclusion visit, dated day 0 by enrolment.
    scheduled_forms(
        client, patient, "M0", day0, mrss_area=2, kit=allocation.kit_number, dispensing=True
    )
    saved(
        fill(
            client,
            patient,
            "M0",
            "skin_biopsy",
            {"biopsy_date": iso(day0), "body_site": "forearm", "dermal_thickness_um": "2100"},
        )
    )
    assert visit_status(patient, "M0") == "complete"
    assert Mrss.objects.get(patient=patient, visit__code="M0").total == 34
    assert Dlqi.objects.get(patient=patient, visit__code="M0").total == 10
    assert Haq.objects.get(patient=patient, visit__code="M0").di == 1.0

    # M3 cannot start while M1 is neither done nor missed.
    response = date_visit(client, patient, "M3", day0 + timedelta(days=91))
    assert response.status_code == 200
    assert "M1" in response.content.decode()

    # M1 missed, with its reason (a deviation).
    m1 = patient.visits.get(code="M1")
    response = client.post(
        reverse("crfs:visit", args=[world.rct.code, patient.subject_code, "M1", 1]),
        {"reason": "Patient hospitalised elsewhere", "version": m1.version},
    )
    assert response.status_code == 302
    assert visit_status(patient, "M1") == "missed"

    # M3 five days after its window: refused without a deviation, accepted with one.
    late = day0 + timedelta(days=91 + 14 + 5)
    response = date_visit(client, patient, "M3", late)
    assert response.status_code == 200
    assert "deviation" in response.content.decode().lower()
    assert patient.visits.get(code="M3").visit_date is None
    saved(
        date_visit(
            client,
            patient,
            "M3",
            late,
            deviation_category="out_of_window",
            deviation_reason="Patient on holiday",
        )
    )
    deviation = Deviation.objects.get(patient=patient, visit__code="M3")
    assert (deviation.days_outside, deviation.reason) == (5, "Patient on holiday")
    scheduled_forms(client, patient, "M3", late, mrss_area=1, kit=allocation.kit_number)
    saved(
        fill(
            client,
            patient,
            "M3",
            "drug_accountability",
            {
                "kit_number": allocation.kit_number,
                "accountability_date": iso(late),
                "units_dispensed": "720",
                "units_returned": "280",
            },
        )
    )
    assert visit_status(patient, "M3") == "complete"
    assert DrugAccountability.objects.get(patient=patient).compliance_pct == pytest.approx(
        100 * 440 / (4 * 110), abs=0.1
    )

    for code, day, area in (("M6", 182, 1), ("M12", 365, 1)):
        saved(date_visit(client, patient, code, day0 + timedelta(days=day)))
        saved(fill(client, patient, code, "mrss", mrss_data(day0 + timedelta(days=day), area)))
        saved(fill(client, patient, code, "dlqi", dlqi_data("not_at_all")))
        saved(fill(client, patient, code, "haq", haq_data(0)))
        if code == "M6":
            saved(fill(client, patient, code, "safety_labs", labs_data(day0 + timedelta(days=day))))
            saved(
                fill(
                    client,
                    patient,
                    code,
                    "skin_biopsy",
                    {"biopsy_date": iso(day0 + timedelta(days=day)), "body_site": "forearm"},
                )
            )
            saved(
                fill(
                    client,
                    patient,
                    code,
                    "drug_accountability",
                    {
                        "kit_number": allocation.kit_number,
                        "accountability_date": iso(day0 + timedelta(days=day)),
                        "units_dispensed": "720",
                        "units_returned": "10",
                    },
                )
            )
        assert visit_status(patient, code) == "complete", code

    response = client.post(
        reverse("patients:end", args=[world.rct.code, patient.subject_code]),
        {"status": "completed", "end_date": iso(today), "reason": "Follow-up finished"},
    )
    patient.refresh_from_db()
    assert patient.status == Patient.Status.COMPLETED

    casebook = client.get(reverse("patients:detail", args=[world.rct.code, patient.subject_code]))
    points = {p.visit_code: (p.total, p.change_pct) for p in casebook.context["mrss"]}
    assert points == {
        "SCR": (34, None),  # before inclusion: no change from baseline
        "M0": (34, 0.0),
        "M3": (17, -50.0),
        "M6": (17, -50.0),
        "M12": (17, -50.0),
    }
    statuses = {c.visit.code: c.visit.status for c in casebook.context["columns"]}
    assert statuses == {
        "SCR": "complete", "M0": "complete", "M1": "missed", "M3": "complete",
        "M6": "complete", "M12": "complete",
    }  # fmt: skip
