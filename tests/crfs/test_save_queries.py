"""What saving a form costs, pinned: the same number of queries for a patient just enrolled
and for one whose every visit is filled, since a save reads the visit it saves (its forms,
the conditions, the consent), never the casebook."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ecrf.crfs.models import Mrss
from ecrf.crfs.services import crf_save
from ecrf.patients.randomisation import allocation_list_generate
from ecrf.patients.visits import visit_add_unscheduled, visit_record_date
from ecrf.scoring import mrss as mrss_scoring
from tests.factories import MembershipFactory, UserFactory
from tests.walks.helpers import (
    date_visit,
    dlqi_data,
    enrol,
    fill,
    form_url,
    haq_data,
    iso,
    labs_data,
    mrss_data,
    rct_m0,
    rct_pre_inclusion,
    saved,
    screen,
)

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
DAY0 = TODAY - timedelta(days=400)
# The followed patient's visits after M0, each with its forms (M0 is filled by rct_m0).
FOLLOW_UP = (("M1", 30), ("M3", 91), ("M6", 182), ("M12", 365))


@pytest.fixture
def client(client, world):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.force_login(world.alice)
    return client


@pytest.fixture
def kits(world):
    keeper = UserFactory(username="keeper")
    MembershipFactory(user=keeper, study=world.rct, role="data_manager", unblinded=True)
    allocation_list_generate(study=world.rct, site=world.bxp, size=8, seed=7, by=keeper)


def enrolled(client, world, *, followed: bool):
    """Enrolled 400 days ago with SCR and M0 filled; followed: every visit to M12 too."""
    patient = screen(client, world.rct, site="BXP", screening_date=DAY0 - timedelta(days=10))
    rct_pre_inclusion(client, patient, DAY0 - timedelta(days=5))
    saved(enrol(client, patient, DAY0))
    patient.refresh_from_db()
    kit = patient.allocation.kit_number
    rct_m0(client, patient, DAY0, kit)
    for code, days in FOLLOW_UP if followed else ():
        day = DAY0 + timedelta(days=days)
        saved(date_visit(client, patient, code, day))
        saved(fill(client, patient, code, "mrss", mrss_data(day, 2)))
        saved(fill(client, patient, code, "dlqi", dlqi_data()))
        saved(fill(client, patient, code, "haq", haq_data()))
        if code == "M12":
            continue
        saved(fill(client, patient, code, "safety_labs", labs_data(day)))
        count = {"kit_number": kit, "accountability_date": iso(day), "units_dispensed": "720"}
        saved(fill(client, patient, code, "drug_accountability", {**count, "units_returned": "9"}))
        if code == "M6":
            biopsy = {"biopsy_date": iso(day), "body_site": "forearm"}
            saved(fill(client, patient, code, "skin_biopsy", biopsy))
    assert set(patient.visits.values_list("status", flat=True)) == (
        {"complete"} if followed else {"complete", "planned"}
    )
    return patient


@pytest.mark.parametrize("followed", [False, True], ids=["just enrolled", "every visit filled"])
def test_an_mrss_save_costs_the_same_whatever_the_patients_history(
    client, world, kits, followed, django_assert_num_queries
):
    patient = enrolled(client, world, followed=followed)
    alice = world.alice
    uns = visit_record_date(
        visit=visit_add_unscheduled(patient=patient, by=alice), by=alice, visit_date=TODAY
    )
    url = form_url(patient, "UNS", "mrss")
    # Session, user, the account's memberships (roles, the second factor), study, visit,
    # the visit's forms (conditions), the form; then crf_save: the visit and patient locked
    # (conditions and consent date are the patient's facts), the form locked, the freezes
    # and locks over it (one query), the previous mRSS (the drop warning), the insert in its
    # savepoint, the form index entry, the valid signatures its change would void (one
    # query when none), the visit's index entries (completion).
    with django_assert_num_queries(18):
        saved(client.post(url, {"version": 0, **mrss_data(TODAY, 2)}))
    with django_assert_num_queries(18):
        correction = {**mrss_data(TODAY, 2), "face": "3", "reason": "re-read the sheet"}
        saved(client.post(url, {"version": 1, **correction}))
    # The service alone: the same minus the request's own queries and the form's reading.
    with django_assert_num_queries(14):
        crf_save(
            visit=uns, form_code="mrss", values={"face": 1}, by=alice,
            expected_version=2, reason="second opinion",
        )  # fmt: skip
    assert Mrss.objects.get(visit=uns).version == 3


def test_the_first_form_after_consent_costs_as_many_queries(
    client, world, django_assert_num_queries
):
    patient = screen(client, world.rct, site="BXP", screening_date=TODAY)
    saved(date_visit(client, patient, "SCR", TODAY))
    consent = {
        "consent_date": iso(TODAY),
        "consent_version": "v2",
        "signed_by_investigator": "true",
    }
    saved(fill(client, patient, "SCR", "consent", consent))
    url = reverse("crfs:form", args=[patient.study.code, patient.subject_code, "SCR", 1, "mrss"])
    with django_assert_num_queries(18):
        saved(client.post(url, {"version": 0, **mrss_data(TODAY, 2)}))
    scr = patient.visits.get(code="SCR")
    with django_assert_num_queries(14):
        crf_save(
            visit=scr, form_code="mrss", values=dict.fromkeys(mrss_scoring.AREAS, 1),
            by=world.alice, expected_version=1, reason="re-read the sheet",
        )  # fmt: skip
