"""The CDISC SDTM AE mapping: every field to its variable, the SDTM way."""

from __future__ import annotations

from datetime import date

import pytest

from ecrf.safety.cdisc import AE_VARIABLES, ae_record
from ecrf.safety.models import AdverseEvent
from ecrf.safety.services import ae_create
from tests.safety.conftest import ae_values, sae_values

pytestmark = pytest.mark.django_db

# crf-spec.md, adverse_event: "CDISC AE names for export", in its order.
SPEC_VARIABLES = [
    "AETERM",
    "AELLTCD",
    "AEDECOD",
    "AESTDTC",
    "AEENDTC",
    "AETOXGR",
    "AESER",
    "AESDTH",
    "AESLIFE",
    "AESHOSP",
    "AESDISAB",
    "AESCONG",
    "AESMIE",
    "AEREL",
    "AEACN",
    "AEOUT",
]


def test_mapping_names_each_spec_variable_once_from_a_field_of_the_model():
    assert list(AE_VARIABLES.values()) == SPEC_VARIABLES
    fields = {f.name for f in AdverseEvent._meta.get_fields()}
    assert set(AE_VARIABLES) <= fields


def test_serious_event_with_a_partial_onset_maps_to_sdtm_values(world, patient):
    values = sae_values(
        meddra_llt_code="10035664",
        meddra_pt_code="10035664",
        onset_date="2026-10",
        ongoing=False,
        end_date=date(2026, 11, 2),
        sae_life_threatening=True,
        relatedness="possible",
        action_taken="interrupted",
        outcome="recovered_with_sequelae",
    )
    event = ae_create(patient=patient, by=world.alice, values=values)
    event.refresh_from_db()
    assert ae_record(event) == {
        "AETERM": "Pneumonia",
        "AELLTCD": "10035664",
        "AEDECOD": "10035664",
        "AESTDTC": "2026-10",
        "AEENDTC": "2026-11-02",
        "AETOXGR": "3",
        "AESER": "Y",
        "AESDTH": "N",
        "AESLIFE": "Y",
        "AESHOSP": "Y",
        "AESDISAB": "N",
        "AESCONG": "N",
        "AESMIE": "N",
        "AEREL": "POSSIBLY RELATED",
        "AEACN": "DRUG INTERRUPTED",
        "AEOUT": "RECOVERED/RESOLVED WITH SEQUELAE",
    }


def test_ongoing_non_serious_event_without_codes_maps_to_empty_and_no(world, patient):
    values = ae_values(ongoing=True, end_date=None, outcome="not_recovered")
    event = ae_create(patient=patient, by=world.alice, values=values)
    event.refresh_from_db()
    row = ae_record(event)
    assert (row["AELLTCD"], row["AEDECOD"], row["AEENDTC"]) == ("", "", "")
    assert row["AESTDTC"] == "2026-10-01"
    assert {row[v] for v in ("AESER", "AESDTH", "AESLIFE", "AESHOSP", "AESDISAB")} == {"N"}
    assert (row["AEREL"], row["AEACN"], row["AEOUT"]) == (
        "UNLIKELY RELATED",
        "DOSE NOT CHANGED",
        "NOT RECOVERED/NOT RESOLVED",
    )


@pytest.mark.parametrize(
    "field, answers, variable",
    [
        ("relatedness", AdverseEvent.Relatedness.values, "AEREL"),
        ("action_taken", AdverseEvent.Action.values, "AEACN"),
        ("outcome", AdverseEvent.Outcome.values, "AEOUT"),
    ],
)
def test_every_coded_answer_has_a_controlled_term(field, answers, variable):
    terms = set()
    for answer in answers:
        event = AdverseEvent(**{**ae_values(), field: answer})
        text = ae_record(event)[variable]
        assert text and text == text.upper()
        terms.add(text)
    assert len(terms) == len(answers)  # no two answers exported alike
