"""The one place where adverse-event fields meet their CDISC SDTM AE variables.

Exports read this mapping and nothing else; a field renamed here is renamed in every
export. Values are converted the SDTM way: Y/N flags, ISO 8601 dates (a partial onset
keeps its precision), CTCAE grade as text, and the controlled terms below.
"""

from __future__ import annotations

from datetime import date

# model field -> SDTM AE variable (crf-spec.md, adverse_event)
AE_VARIABLES: dict[str, str] = {
    "term": "AETERM",
    "meddra_llt_code": "AELLTCD",
    "meddra_pt_code": "AEDECOD",
    "onset_date": "AESTDTC",
    "end_date": "AEENDTC",
    "ctcae_grade": "AETOXGR",
    "serious": "AESER",
    "sae_death": "AESDTH",
    "sae_life_threatening": "AESLIFE",
    "sae_hospitalisation": "AESHOSP",
    "sae_disability": "AESDISAB",
    "sae_congenital_anomaly": "AESCONG",
    "sae_important_medical_event": "AESMIE",
    "relatedness": "AEREL",
    "action_taken": "AEACN",
    "outcome": "AEOUT",
}

# SDTM controlled terminology for the coded answers.
AEACN_TERMS = {
    "none": "DOSE NOT CHANGED",
    "dose_reduced": "DOSE REDUCED",
    "interrupted": "DRUG INTERRUPTED",
    "withdrawn": "DRUG WITHDRAWN",
}
AEOUT_TERMS = {
    "recovered": "RECOVERED/RESOLVED",
    "recovering": "RECOVERING/RESOLVING",
    "not_recovered": "NOT RECOVERED/NOT RESOLVED",
    "recovered_with_sequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
    "fatal": "FATAL",
    "unknown": "UNKNOWN",
}
AEREL_TERMS = {
    "not_related": "NOT RELATED",
    "unlikely": "UNLIKELY RELATED",
    "possible": "POSSIBLY RELATED",
    "probable": "PROBABLY RELATED",
    "definite": "RELATED",
}


def ae_record(event) -> dict[str, str]:
    """One adverse event as SDTM AE variable -> value (text, '' when not recorded)."""
    row: dict[str, str] = {}
    for field, variable in AE_VARIABLES.items():
        value = getattr(event, field)
        if isinstance(value, bool):
            text = "Y" if value else "N"
        elif isinstance(value, date):
            text = value.isoformat()
        elif value is None:
            text = ""
        elif field == "action_taken":
            text = AEACN_TERMS[value]
        elif field == "outcome":
            text = AEOUT_TERMS[value]
        elif field == "relatedness":
            text = AEREL_TERMS[value]
        else:
            text = str(value)
        row[variable] = text
    return row
