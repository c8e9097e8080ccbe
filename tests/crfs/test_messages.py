"""Messages people can act on: what is wrong, with the words of the screen, and what to do."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from ecrf.patients.models import Patient
from ecrf.patients.randomisation import allocation_list_generate
from tests.factories import MembershipFactory, UserFactory
from tests.walks.helpers import (
    MEDICAL_HISTORY,
    enrol,
    fill,
    flashed,
    iso,
    labs_data,
    mrss_data,
    rct_pre_inclusion,
    saved,
    screen,
)

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
SCR_DAY = TODAY - timedelta(days=5)
REASON_NEEDED = (
    "Give the reason for change: the form was already saved, and every change to saved data "
    "is kept in the audit trail with its reason."
)
# A data dictionary key (alt_u_l, mi_date...): what a message must never show.
KEY = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")


@pytest.fixture
def client(client, world):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.force_login(world.alice)
    return client


@pytest.fixture
def screened(client, world) -> Patient:
    keeper = UserFactory(username="keeper")
    MembershipFactory(user=keeper, study=world.rct, role="data_manager", unblinded=True)
    allocation_list_generate(study=world.rct, site=world.bxp, size=8, seed=7, by=keeper)
    patient = screen(client, world.rct, site="BXP", screening_date=SCR_DAY)
    rct_pre_inclusion(client, patient, SCR_DAY)
    return patient


def test_a_change_without_a_reason_says_why_one_is_needed(client, screened):
    response = fill(client, screened, "SCR", "mrss", {**mrss_data(SCR_DAY, 2), "face": "3"})
    assert response.status_code == 200
    assert response.context["form"].errors["reason"] == [REASON_NEEDED]


def test_an_mrss_area_out_of_range_names_the_area_and_what_it_takes(client, screened):
    data = {**mrss_data(SCR_DAY, 2), "forearm_r": "4", "reason": "re-read the paper sheet"}
    response = fill(client, screened, "SCR", "mrss", data)
    assert response.context["form"].errors["forearm_r"] == [
        "Forearm, right: 4 is not allowed; choose 0, 1, 2 or 3."
    ]


def test_eligibility_messages_name_the_fields_by_their_labels(client, screened):
    reason = {"reason": "corrected from the laboratory report"}
    labs = {**labs_data(SCR_DAY), "alt_u_l": "90", "platelets_x10e9_l": "40"}
    saved(fill(client, screened, "SCR", "safety_labs", {**labs, **reason}))
    history = {**MEDICAL_HISTORY, "mi_date": iso(SCR_DAY - timedelta(days=30))}
    saved(fill(client, screened, "SCR", "medical_history", {**history, **reason}))
    response = enrol(client, screened, TODAY)
    problems = " ".join(flashed(response))
    assert "ALT (SGPT) 90 U/L (2.00 × ULN) above 1.5 × ULN" in problems
    assert "Platelets 40 ×10⁹/L, needs ≥ 50" in problems
    assert "Date of last myocardial infarction is" in problems
    assert KEY.findall(problems) == []
