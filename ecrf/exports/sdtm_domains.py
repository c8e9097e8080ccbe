"""The SDTM-ready domains of a study: their variables and their rows, read from the models.

Each domain is a `Domain` (code, label, variables with their label, type, origin and
notes) and a function that yields its rows as dicts, one domain at a time, read with
server-side cursors and the export's own filter (the study, the sites asked for):

- DM, one row per patient (every patient of the study, screen failures included);
- SV, one row per visit that took place (a visit date);
- AE, one row per adverse event, through the one mapping of `ecrf.safety.cdisc`;
- LB, one row per analyte of each safety laboratory form;
- QS, one row per item and per derived score of each DLQI and HAQ;
- XS (custom, "skin findings"), one row per area score and the total of each mRSS.

Study days (`--DY`) count from day 0 (the inclusion, randomisation, date: the patient's
`day0_date`, which is also RFSTDTC) the SDTM way: day 1 is day 0 itself, the day before
is day -1, there is no day 0.

Blinded (the default): no arm anywhere; ARMCD, ARM, ACTARMCD and ACTARM are empty for
the patients of a randomised study (their arm is in an unblinded export only). The groups
of an observational study are no allocation: they are written either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Exists, OuterRef, Subquery
from django.utils import translation
from django.utils.text import capfirst

from ecrf.crfs.models import (
    DLQI_QUESTIONS,
    LAB_ANALYTES,
    ULN_ANALYTES,
    Demographics,
    Dlqi,
    Haq,
    Mrss,
    SafetyLabs,
)
from ecrf.patients.models import Allocation, Patient, Visit
from ecrf.safety.cdisc import AE_VARIABLES, ae_record
from ecrf.safety.models import AdverseEvent
from ecrf.scoring import dlqi as dlqi_scoring
from ecrf.scoring import haq as haq_scoring
from ecrf.scoring import mrss as mrss_scoring

CHUNK_SIZE = 2000
# SITE.country is ISO 3166 alpha-2; SDTM's COUNTRY is alpha-3.
COUNTRIES = {
    "FR": "FRA",
    "BE": "BEL",
    "CH": "CHE",
    "DE": "DEU",
    "ES": "ESP",
    "GB": "GBR",
    "IT": "ITA",
    "LU": "LUX",
    "NL": "NLD",
}


def study_day(day: date | None, day0: date | None) -> int | None:
    """The SDTM study day of `day`: day 0 (the reference date) is day 1, the day before
    it day -1; there is no day 0. None when either date is unknown."""
    if day is None or day0 is None:
        return None
    delta = (day - day0).days
    return delta + 1 if delta >= 0 else delta


def complete_date(text: str | None) -> date | None:
    """A full ISO date from an ISO text ("2026-10-03"); None for a partial one ("2026-10")."""
    if not text or len(text) != 10:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def visit_number(sequence: int, repeat: int) -> float:
    """VISITNUM: the protocol's order of the visit; a repeated (unscheduled) visit adds
    its occurrence as hundredths (UNS 7, then 7.01, 7.02...)."""
    return float(Decimal(sequence) + (Decimal(repeat) - 1) / 100)


def english(text) -> str:
    with translation.override("en"):
        return str(text)


@dataclass(frozen=True)
class Var:
    name: str
    label: str
    type: str  # "Char" or "Num"
    origin: str  # "CRF", "Derived", "Assigned", "Protocol"
    notes: str = ""

    @property
    def numeric(self) -> bool:
        return self.type == "Num"


@dataclass(frozen=True)
class Domain:
    code: str
    label: str
    variables: tuple[Var, ...]
    # (Source) -> rows as dicts of variable -> value (None or "" for missing)
    rows: Callable[[Source], Iterator[dict]]
    # The form code whose rows the domain needs (None: always written).
    form: str | None = None


@dataclass
class Source:
    """What the domains read: the study, the sites asked for (empty: all), blinding, the
    export's datasets by code (their querysets carry the same filter)."""

    study: object
    sites: list
    unblinded: bool
    datasets: dict
    # Called once per record read (a patient, a visit, an event, a form): the progress.
    tick: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        self.protocols = {
            version.pk: version.protocol for version in self.study.protocol_versions.all()
        }
        self._visits: dict[tuple[int, str], tuple[str, int | None]] = {}

    def patients(self):
        rows = Patient.objects.filter(study=self.study)
        return rows.filter(site__in=self.sites) if self.sites else rows

    def rows_of(self, code: str, model):
        """The form's rows as the export's dataset filters them (else the same filter)."""
        dataset = self.datasets.get(code)
        if dataset is not None:
            return dataset.queryset
        rows = model.objects.filter(patient__study=self.study)
        if self.sites:
            rows = rows.filter(patient__site__in=self.sites)
        return rows.order_by("patient__subject_code", "visit__sequence", "visit__repeat", "pk")

    def visit(self, version_id: int | None, code: str | None, repeat: int = 1):
        """(VISIT, planned study day VISITDY) of a visit code under its protocol version."""
        if version_id is None or code is None:
            return "", None
        key = (version_id, code)
        if key not in self._visits:
            name, planned = code, None
            protocol = self.protocols.get(version_id)
            spec = next((v for v in protocol.visits if v.code == code), None) if protocol else None
            if spec is not None:
                name = spec.name_en
                if spec.target_day is not None:
                    planned = spec.target_day + 1 if spec.target_day >= 0 else spec.target_day
            self._visits[key] = (name, planned)
        name, planned = self._visits[key]
        return (f"{name} {repeat}" if repeat > 1 else name), planned

    def usubjid(self, subject_code: str) -> str:
        return f"{self.study.code}-{subject_code}"


def _ident(domain: str) -> tuple[Var, ...]:
    return (
        Var("STUDYID", "Study Identifier", "Char", "Assigned", "The registration number"),
        Var("DOMAIN", "Domain Abbreviation", "Char", "Assigned"),
        Var("USUBJID", "Unique Subject Identifier", "Char", "Derived", "STUDYID-SUBJID"),
        Var(f"{domain}SEQ", "Sequence Number", "Num", "Derived", "1, 2... within USUBJID"),
    )


def _visit_vars(domain: str, date_label: str) -> tuple[Var, ...]:
    return (
        Var("VISITNUM", "Visit Number", "Num", "Derived", "Protocol order; repeats .01, .02"),
        Var("VISIT", "Visit Name", "Char", "Protocol"),
        Var(f"{domain}DTC", date_label, "Char", "CRF", "ISO 8601"),
        Var(f"{domain}DY", "Study Day of " + date_label.split(" of ")[-1], "Num", "Derived",
            "Day 0 is day 1, the day before -1"),
    )  # fmt: skip


def _base(source: Source, domain: str, subject_code: str, seq: int) -> dict:
    return {
        "STUDYID": source.study.code,
        "DOMAIN": domain,
        "USUBJID": source.usubjid(subject_code),
        f"{domain}SEQ": seq,
    }


class _Sequence:
    """--SEQ: 1, 2, ... within each subject, for rows that come ordered by subject."""

    def __init__(self) -> None:
        self.subject, self.number = None, 0

    def next(self, subject: str) -> int:
        if subject != self.subject:
            self.subject, self.number = subject, 0
        self.number += 1
        return self.number


# -- DM ----------------------------------------------------------------------------------------

DM_VARS = (
    Var("STUDYID", "Study Identifier", "Char", "Assigned", "The registration number"),
    Var("DOMAIN", "Domain Abbreviation", "Char", "Assigned"),
    Var("USUBJID", "Unique Subject Identifier", "Char", "Derived", "STUDYID-SUBJID"),
    Var("SUBJID", "Subject Identifier for the Study", "Char", "CRF", "The subject code"),
    Var("RFSTDTC", "Subject Reference Start Date/Time", "Char", "CRF",
        "Day 0: the inclusion (randomisation) date"),
    Var("RFENDTC", "Subject Reference End Date/Time", "Char", "CRF", "End of study date"),
    Var("RFICDTC", "Date/Time of Informed Consent", "Char", "CRF"),
    Var("DTHDTC", "Date/Time of Death", "Char", "CRF"),
    Var("DTHFL", "Subject Death Flag", "Char", "Derived", "Y or empty"),
    Var("SITEID", "Study Site Identifier", "Char", "Assigned"),
    Var("BRTHDTC", "Date/Time of Birth", "Char", "CRF",
        "Partial: year and month only (no day is collected)"),
    Var("AGE", "Age", "Num", "Derived",
        "Completed years at RFSTDTC (else at consent), counted as the eligibility check does "
        "without the day of birth"),
    Var("AGEU", "Age Units", "Char", "Assigned", "YEARS"),
    Var("SEX", "Sex", "Char", "CRF", "F, M"),
    Var("ARMCD", "Planned Arm Code", "Char", "Assigned",
        "Empty in a blinded export; the arm code unblinded; the group of an observational "
        "study"),
    Var("ARM", "Description of Planned Arm", "Char", "Assigned", "As ARMCD, its label"),
    Var("ACTARMCD", "Actual Arm Code", "Char", "Assigned", "As ARMCD (the arm allocated)"),
    Var("ACTARM", "Description of Actual Arm", "Char", "Assigned", "As ARM"),
    Var("ARMNRS", "Reason Arm and/or Actual Arm is Null", "Char", "Derived",
        "SCREEN FAILURE or NOT ASSIGNED; empty for an allocated patient"),
    Var("COUNTRY", "Country", "Char", "Assigned", "ISO 3166 alpha-3"),
)  # fmt: skip


def age(birth_year: int | None, birth_month: int | None, on: date | None) -> int | None:
    """The years certainly completed on `on` from a birth year (and month)."""
    if birth_year is None or on is None:
        return None
    years = on.year - birth_year
    if birth_month is None or on.month <= birth_month:
        years -= 1
    return years


def _arms(protocol) -> dict[str, str]:
    return {arm.code: arm.label_en for arm in protocol.arms} if protocol else {}


def dm_rows(source: Source) -> Iterator[dict]:
    demographics = Demographics.objects.filter(patient=OuterRef("pk")).order_by("-pk")
    rows = source.patients().annotate(
        birth_year=Subquery(demographics.values("birth_year")[:1]),
        birth_month=Subquery(demographics.values("birth_month")[:1]),
        sex=Subquery(demographics.values("sex")[:1]),
        # The kit is no secret: whether a patient has one says nothing of the arm.
        allocated=Exists(Allocation.objects.filter(patient=OuterRef("pk"))),
    )
    lookups = [
        "subject_code",
        "site__code",
        "site__country",
        "day0_date",
        "end_date",
        "consent_date",
        "status",
        "group",
        "protocol_version_id",
        "birth_year",
        "birth_month",
        "sex",
        "allocated",
    ]
    if source.unblinded:
        # Only an unblinded export reads the allocation at all.
        arm = Allocation.objects.filter(patient=OuterRef("pk")).values("arm")[:1]
        rows = rows.annotate(allocated_arm=Subquery(arm))
        lookups.append("allocated_arm")
    rows = rows.order_by("subject_code").values_list(*lookups)
    for values in rows.iterator(chunk_size=CHUNK_SIZE):
        (subject, site, country, day0, end, consent, status, group, version, year, month, sex,
         allocated, *arm) = values  # fmt: skip
        arm = arm or [None]
        source.tick()
        protocol = source.protocols.get(version)
        code = label = reason = ""
        if protocol is not None and protocol.groups:
            # An observational group is no allocation: written blinded or not.
            if group:
                code = group
                label = next((g.label_en for g in protocol.groups if g.code == group), group)
        elif source.unblinded and arm[0]:
            code, label = arm[0], _arms(protocol).get(arm[0], arm[0])
        if code:
            pass
        elif status == Patient.Status.SCREEN_FAILED:
            reason = "SCREEN FAILURE"
        elif not allocated or (protocol is not None and protocol.groups):
            reason = "NOT ASSIGNED"
        died = status == Patient.Status.DIED
        birth = "" if year is None else f"{year:04d}" + (f"-{month:02d}" if month else "")
        yield {
            "STUDYID": source.study.code,
            "DOMAIN": "DM",
            "USUBJID": source.usubjid(subject),
            "SUBJID": subject,
            "RFSTDTC": day0,
            "RFENDTC": end,
            "RFICDTC": consent,
            "DTHDTC": end if died else None,
            "DTHFL": "Y" if died else "",
            "SITEID": site,
            "BRTHDTC": birth,
            "AGE": age(year, month, day0 or consent),
            "AGEU": "YEARS" if year is not None and (day0 or consent) else "",
            "SEX": sex or "",
            "ARMCD": code,
            "ARM": label,
            "ACTARMCD": code,
            "ACTARM": label,
            "ARMNRS": reason,
            "COUNTRY": COUNTRIES.get(country, country),
        }


# -- SV ----------------------------------------------------------------------------------------

SV_VARS = (
    *_ident("SV")[:3],
    Var("VISITNUM", "Visit Number", "Num", "Derived", "Protocol order; repeats .01, .02"),
    Var("VISIT", "Visit Name", "Char", "Protocol"),
    Var("VISITDY", "Planned Study Day of Visit", "Num", "Protocol",
        "The protocol's target day, counted as --DY"),
    Var("SVSTDTC", "Start Date/Time of Visit", "Char", "CRF", "ISO 8601"),
    Var("SVENDTC", "End Date/Time of Visit", "Char", "CRF", "ISO 8601 (one-day visits)"),
    Var("SVSTDY", "Study Day of Start of Visit", "Num", "Derived",
        "Day 0 is day 1, the day before -1"),
    Var("SVENDY", "Study Day of End of Visit", "Num", "Derived", "As SVSTDY"),
)  # fmt: skip


def sv_rows(source: Source) -> Iterator[dict]:
    visits = Visit.objects.filter(patient__study=source.study, visit_date__isnull=False)
    if source.sites:
        visits = visits.filter(patient__site__in=source.sites)
    visits = visits.order_by("patient__subject_code", "sequence", "repeat").values_list(
        "patient__subject_code",
        "code",
        "repeat",
        "sequence",
        "visit_date",
        "patient__day0_date",
        "protocol_version_id",
    )
    for subject, code, repeat, sequence, day, day0, version in visits.iterator(
        chunk_size=CHUNK_SIZE
    ):
        source.tick()
        name, planned = source.visit(version, code, repeat)
        days = study_day(day, day0)
        yield {
            "STUDYID": source.study.code,
            "DOMAIN": "SV",
            "USUBJID": source.usubjid(subject),
            "VISITNUM": visit_number(sequence, repeat),
            "VISIT": name,
            "VISITDY": planned,
            "SVSTDTC": day,
            "SVENDTC": day,
            "SVSTDY": days,
            "SVENDY": days,
        }


# -- AE ----------------------------------------------------------------------------------------

_AE_LABELS = {
    "AETERM": "Reported Term for the Adverse Event",
    "AELLTCD": "Lowest Level Term Code",
    "AEDECOD": "Dictionary-Derived Term",
    "AESTDTC": "Start Date/Time of Adverse Event",
    "AEENDTC": "End Date/Time of Adverse Event",
    "AETOXGR": "Standard Toxicity Grade",
    "AESER": "Serious Event",
    "AESDTH": "Results in Death",
    "AESLIFE": "Is Life Threatening",
    "AESHOSP": "Requires or Prolongs Hospitalization",
    "AESDISAB": "Persist or Signif Disability/Incapacity",
    "AESCONG": "Congenital Anomaly or Birth Defect",
    "AESMIE": "Other Medically Important Serious Event",
    "AEREL": "Causality",
    "AEACN": "Action Taken with Study Treatment",
    "AEOUT": "Outcome of Adverse Event",
}
_AE_NOTES = {
    "AETERM": "The investigator's words, verbatim (accents kept)",
    "AEDECOD": "MedDRA PT code as collected (ecrf.safety.cdisc)",
    "AESTDTC": "ISO 8601; a partial onset keeps its precision (YYYY-MM)",
    "AETOXGR": "CTCAE grade 1-5",
    "AEREL": "NOT RELATED, UNLIKELY RELATED, POSSIBLY RELATED, PROBABLY RELATED, RELATED",
    "AEACN": "CDISC ACN terms",
    "AEOUT": "CDISC OUT terms",
}

_AE_FLAGS = {"AESER", "AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG", "AESMIE"}

AE_VARS = (
    *_ident("AE"),
    Var("AESPID", "Sponsor-Defined Identifier", "Char", "Assigned", "The log's AE-nnn"),
    *(
        Var(name, _AE_LABELS[name], "Char", "CRF",
            _AE_NOTES.get(name, "Y/N" if name in _AE_FLAGS else ""))
        for name in AE_VARIABLES.values()
    ),
    Var("AESTDY", "Study Day of Start of Adverse Event", "Num", "Derived",
        "Only when AESTDTC is a complete date"),
    Var("AEENDY", "Study Day of End of Adverse Event", "Num", "Derived", "As AESTDY"),
    Var("AEENRF", "End Relative to Reference Period", "Char", "Derived", "ONGOING or empty"),
)  # fmt: skip


def ae_rows(source: Source) -> Iterator[dict]:
    dataset = source.datasets.get(AdverseEvent.FORM_CODE)
    if dataset is not None:
        events = dataset.queryset
    else:
        events = AdverseEvent.objects.filter(patient__study=source.study)
        if source.sites:
            events = events.filter(patient__site__in=source.sites)
        events = events.order_by("patient__subject_code", "number")
    sequence = _Sequence()
    for event in events.select_related("patient").iterator(chunk_size=CHUNK_SIZE):
        source.tick()
        subject, day0 = event.patient.subject_code, event.patient.day0_date
        row = _base(source, "AE", subject, sequence.next(subject))
        row["AESPID"] = f"AE-{event.number:03d}"
        row.update(ae_record(event))
        row["AESTDY"] = study_day(complete_date(row["AESTDTC"]), day0)
        row["AEENDY"] = study_day(event.end_date, day0)
        row["AEENRF"] = "ONGOING" if event.ongoing else ""
        yield row


# -- LB ----------------------------------------------------------------------------------------

# Analyte field -> (LBTESTCD, LBTEST, LBCAT, unit as CDISC writes it).
LB_TESTS = {
    "hemoglobin_g_dl": ("HGB", "Hemoglobin", "HEMATOLOGY", "g/dL"),
    "neutrophils_x10e9_l": ("NEUT", "Neutrophils", "HEMATOLOGY", "10^9/L"),
    "platelets_x10e9_l": ("PLAT", "Platelets", "HEMATOLOGY", "10^9/L"),
    "bilirubin_umol_l": ("BILI", "Bilirubin", "CHEMISTRY", "umol/L"),
    "ast_u_l": ("AST", "Aspartate Aminotransferase", "CHEMISTRY", "U/L"),
    "alt_u_l": ("ALT", "Alanine Aminotransferase", "CHEMISTRY", "U/L"),
    "creatinine_umol_l": ("CREAT", "Creatinine", "CHEMISTRY", "umol/L"),
}
assert tuple(LB_TESTS) == LAB_ANALYTES  # nosec B101  # a table check at import

LB_VARS = (
    *_ident("LB"),
    Var("LBTESTCD", "Lab Test or Examination Short Name", "Char", "Assigned", "CDISC LBTESTCD"),
    Var("LBTEST", "Lab Test or Examination Name", "Char", "Assigned"),
    Var("LBCAT", "Category for Lab Test", "Char", "Assigned", "HEMATOLOGY, CHEMISTRY"),
    Var("LBORRES", "Result or Finding in Original Units", "Char", "CRF"),
    Var("LBORRESU", "Original Units", "Char", "Assigned", "The unit of the CRF field"),
    Var("LBORNRLO", "Reference Range Lower Limit in Orig Unit", "Char", "CRF",
        "Not collected: the CRF records upper normal limits only"),
    Var("LBORNRHI", "Reference Range Upper Limit in Orig Unit", "Char", "CRF",
        "The site laboratory's ULN (bilirubin, AST, ALT, creatinine); empty for the others"),
    Var("LBSTRESC", "Character Result/Finding in Std Format", "Char", "Derived",
        "As LBORRES (no unit conversion)"),
    Var("LBSTRESN", "Numeric Result/Finding in Standard Units", "Num", "Derived"),
    Var("LBSTRESU", "Standard Units", "Char", "Assigned", "As LBORRESU"),
    Var("LBSTNRHI", "Reference Range Upper Limit-Std Units", "Num", "Derived", "As LBORNRHI"),
    Var("LBNRIND", "Reference Range Indicator", "Char", "Derived",
        "HIGH above the ULN, NORMAL at or below; empty without a ULN"),
    Var("LBSTAT", "Completion Status", "Char", "Derived", "NOT DONE when no value"),
    *_visit_vars("LB", "Date/Time of Specimen Collection"),
)  # fmt: skip


def _number(value) -> str:
    return "" if value is None else format(value, "f")


def lb_rows(source: Source) -> Iterator[dict]:
    uln = [f"{name}_uln" for name in ULN_ANALYTES]
    forms = source.rows_of(SafetyLabs.FORM_CODE, SafetyLabs).values_list(
        "patient__subject_code",
        "patient__day0_date",
        "visit__code",
        "visit__repeat",
        "visit__sequence",
        "visit__visit_date",
        "visit__protocol_version_id",
        "sample_date",
        *LAB_ANALYTES,
        *uln,
    )
    sequence = _Sequence()
    for subject, day0, code, repeat, order, visit_day, version, sampled, *values in forms.iterator(
        chunk_size=CHUNK_SIZE
    ):
        source.tick()
        results = dict(zip(LAB_ANALYTES, values[: len(LAB_ANALYTES)], strict=True))
        limits = dict(zip(ULN_ANALYTES, values[len(LAB_ANALYTES) :], strict=True))
        name, _planned = source.visit(version, code, repeat or 1)
        day = sampled or visit_day
        for analyte, (testcd, test, category, unit) in LB_TESTS.items():
            value, high = results[analyte], limits.get(analyte)
            indicator = ""
            if value is not None and high is not None:
                indicator = "HIGH" if value > high else "NORMAL"
            yield {
                **_base(source, "LB", subject, sequence.next(subject)),
                "LBTESTCD": testcd,
                "LBTEST": test,
                "LBCAT": category,
                "LBORRES": _number(value),
                "LBORRESU": unit,
                "LBORNRLO": "",
                "LBORNRHI": _number(high),
                "LBSTRESC": _number(value),
                "LBSTRESN": None if value is None else float(value),
                "LBSTRESU": unit,
                "LBSTNRHI": None if high is None else float(high),
                "LBNRIND": indicator,
                "LBSTAT": "NOT DONE" if value is None else "",
                "VISITNUM": None if order is None else visit_number(order, repeat or 1),
                "VISIT": name,
                "LBDTC": day,
                "LBDY": study_day(day, day0),
            }


# -- QS ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QsTest:
    field: str
    testcd: str
    test: str
    category: str  # QSCAT
    subcategory: str = ""  # QSSCAT
    derived: bool = False


def _question(model, field: str) -> str:
    """A question's label in English, without its number ("1. itchy..." -> "Itchy...")."""
    text = english(model._meta.get_field(field).verbose_name)
    head, _dot, rest = text.partition(". ")
    return capfirst(rest if rest and len(head) <= 3 else text)


def _dlqi_tests() -> tuple[QsTest, ...]:
    tests = []
    for field in DLQI_QUESTIONS:
        number = field[1:]
        code = f"DLQI{int(number.rstrip('ab')):02d}{number.lstrip('0123456789').upper()}"
        tests.append(QsTest(field, code, _question(Dlqi, field), "DLQI"))
    tests.append(QsTest("total", "DLQITOT", "DLQI Total Score", "DLQI", derived=True))
    tests.append(QsTest("band", "DLQIBAND", "DLQI Band", "DLQI", derived=True))
    return tuple(tests)


# HAQ labels that the form words longer than QSTEST's 40 characters.
_HAQ_SHORT = {
    "dress": "Dress yourself, shoelaces and buttons",
    "stand_up": "Stand up from a straight chair",
    "reach_object": "Reach and get down a 5-lb object",
    "bend_down": "Bend down to pick up clothing",
    "open_jars": "Open jars previously opened",
    "chores": "Do chores (vacuuming, yard work)",
    "global_vas": "Patient global assessment (VAS)",
    "disease_severity_vas": "Overall severity of scleroderma (VAS)",
}
_HAQ_CATEGORIES = {
    "dressing": "DRESSING AND GROOMING",
    "arising": "ARISING",
    "eating": "EATING",
    "walking": "WALKING",
    "hygiene": "HYGIENE",
    "reach": "REACH",
    "grip": "GRIP",
    "activities": "ACTIVITIES",
}


def _haq_tests() -> tuple[QsTest, ...]:
    def label(field: str) -> str:
        return _HAQ_SHORT.get(field) or _question(Haq, field)

    tests = []
    number = 0
    for category, items in haq_scoring.CATEGORIES.items():
        for item in items:
            number += 1
            tests.append(
                QsTest(item, f"HAQ{number:02d}", label(item), "HAQ", _HAQ_CATEGORIES[category])
            )
    for number, aid in enumerate(haq_scoring.AIDS, start=1):
        tests.append(QsTest(aid, f"HAQAID{number:02d}", label(aid), "HAQ", "AIDS OR DEVICES"))
    tests.append(QsTest("aid_other", "HAQAIDOT", label("aid_other"), "HAQ", "AIDS OR DEVICES"))
    for number, helped in enumerate(haq_scoring.HELP, start=1):
        tests.append(
            QsTest(helped, f"HAQHLP{number:02d}", label(helped), "HAQ", "HELP FROM ANOTHER PERSON")
        )
    for number, scale in enumerate(haq_scoring.VAS_SCALES, start=1):
        category = "HAQ" if scale in haq_scoring.HAQ_VAS else "SHAQ"
        tests.append(QsTest(scale, f"HAQVAS{number:02d}", label(scale), category, "VAS"))
    tests.append(QsTest("di", "HAQDI", "HAQ Disability Index", "HAQ", derived=True))
    tests.append(
        QsTest("di_without_aids", "HAQDINA", "HAQ Disability Index Without Aids", "HAQ",
               derived=True)
    )  # fmt: skip
    for number, (score, scale) in enumerate(Haq.VAS_SCORES.items(), start=1):
        category = "HAQ" if scale in haq_scoring.HAQ_VAS else "SHAQ"
        tests.append(QsTest(score, f"HAQVS{number:02d}", label(score), category, derived=True))
    return tuple(tests)


DLQI_TESTS = _dlqi_tests()
HAQ_TESTS = _haq_tests()

QS_VARS = (
    *_ident("QS"),
    Var("QSTESTCD", "Question Short Name", "Char", "Assigned", "See README.txt"),
    Var("QSTEST", "Question Name", "Char", "Assigned"),
    Var("QSCAT", "Category of Question", "Char", "Assigned", "DLQI, HAQ, SHAQ"),
    Var("QSSCAT", "Subcategory for Question", "Char", "Assigned", "The HAQ category"),
    Var("QSORRES", "Finding in Original Units", "Char", "CRF",
        "The answer's English label; Y/N for a tick box; the value of a VAS or a score"),
    Var("QSSTRESC", "Character Result/Finding in Std Format", "Char", "Derived",
        "The item's score as text"),
    Var("QSSTRESN", "Numeric Finding in Standard Units", "Num", "Derived",
        "The item's score (DLQI 0-3, HAQ 0-3, VAS 0-100, 1/0 for a tick box); the totals"),
    Var("QSSTAT", "Completion Status", "Char", "Derived", "NOT DONE when not answered"),
    Var("QSDRVFL", "Derived Flag", "Char", "Derived", "Y for the scores derived from the items"),
    *_visit_vars("QS", "Date/Time of Finding"),
)  # fmt: skip


def _choice_label(model, field: str, value) -> str:
    choices = dict(model._meta.get_field(field).flatchoices)
    return english(choices.get(value, value))


def _dlqi_score(field: str, value) -> int | None:
    if field == "q7a":
        return dlqi_scoring.Q7A_ANSWERS.get(value)
    if field == "q7b":
        return dlqi_scoring.Q7B_ANSWERS.get(value)
    return dlqi_scoring.ITEM_ANSWERS[field].get(value)


def _qs_result(model, test: QsTest, value) -> tuple[str, str, float | None]:
    """(QSORRES, QSSTRESC, QSSTRESN) of one answer or score."""
    if value is None or value == "":
        return "", "", None
    if model is Dlqi and not test.derived:
        score = _dlqi_score(test.field, value)
        return (
            _choice_label(Dlqi, test.field, value),
            "" if score is None else str(score),
            None if score is None else float(score),
        )
    if test.field == "band":
        return _choice_label(Dlqi, "band", value), value, None
    if isinstance(value, bool):
        return ("Y" if value else "N"), str(int(value)), float(value)
    if isinstance(value, str):  # the other aid, free text
        return value, value, None
    field = model._meta.get_field(test.field)
    original = _choice_label(model, test.field, value) if field.choices else _text(value)
    return original, _text(value), float(value)


def _text(value) -> str:
    if isinstance(value, float):
        return repr(round(value, 6)).removesuffix(".0")
    return str(value)


def _qs_form_rows(source: Source, model, tests) -> Iterator[tuple[str, list[dict]]]:
    fields = [test.field for test in tests]
    forms = source.rows_of(model.FORM_CODE, model).values_list(
        "patient__subject_code",
        "patient__day0_date",
        "visit__code",
        "visit__repeat",
        "visit__sequence",
        "visit__visit_date",
        "visit__protocol_version_id",
        *fields,
    )
    for subject, day0, code, repeat, order, day, version, *values in forms.iterator(
        chunk_size=CHUNK_SIZE
    ):
        source.tick()
        name, _planned = source.visit(version, code, repeat or 1)
        answers = dict(zip(fields, values, strict=True))
        rows = []
        for test in tests:
            value = answers[test.field]
            if test.derived and value in (None, ""):
                continue  # a score that could not be derived is not a finding
            if test.field == "aid_other" and not value:
                continue  # no other aid: nothing was recorded
            if test.field == "q7b" and not value and answers["q7a"] != "no":
                continue  # asked only after "no" to 7a
            original, standard, number = _qs_result(model, test, value)
            rows.append(
                {
                    "QSTESTCD": test.testcd,
                    "QSTEST": test.test,
                    "QSCAT": test.category,
                    "QSSCAT": test.subcategory,
                    "QSORRES": original,
                    "QSSTRESC": standard,
                    "QSSTRESN": number,
                    "QSSTAT": "NOT DONE" if value is None or value == "" else "",
                    "QSDRVFL": "Y" if test.derived else "",
                    "VISITNUM": None if order is None else visit_number(order, repeat or 1),
                    "VISIT": name,
                    "QSDTC": day,
                    "QSDY": study_day(day, day0),
                }
            )
        yield subject, rows


def qs_rows(source: Source) -> Iterator[dict]:
    """DLQI then HAQ forms, each ordered by subject: the sequence runs on per subject."""
    sequences: dict[str, int] = {}
    for model, tests in ((Dlqi, DLQI_TESTS), (Haq, HAQ_TESTS)):
        if model.FORM_CODE not in source.datasets:
            continue
        for subject, rows in _qs_form_rows(source, model, tests):
            for row in rows:
                sequences[subject] = sequences.get(subject, 0) + 1
                yield {**_base(source, "QS", subject, sequences[subject]), **row}


# -- XS: the mRSS --------------------------------------------------------------------------------

# Area field -> (XSTESTCD, XSLOC, XSLAT).
XS_AREAS = {
    "face": ("FACE", "FACE", ""),
    "anterior_chest": ("ANTCHEST", "ANTERIOR CHEST", ""),
    "abdomen": ("ABDOMEN", "ABDOMEN", ""),
    "fingers_r": ("FINGERSR", "FINGERS", "RIGHT"),
    "fingers_l": ("FINGERSL", "FINGERS", "LEFT"),
    "hand_r": ("HANDR", "HAND, DORSUM", "RIGHT"),
    "hand_l": ("HANDL", "HAND, DORSUM", "LEFT"),
    "forearm_r": ("FOREARMR", "FOREARM", "RIGHT"),
    "forearm_l": ("FOREARML", "FOREARM", "LEFT"),
    "upper_arm_r": ("UPARMR", "UPPER ARM", "RIGHT"),
    "upper_arm_l": ("UPARML", "UPPER ARM", "LEFT"),
    "thigh_r": ("THIGHR", "THIGH", "RIGHT"),
    "thigh_l": ("THIGHL", "THIGH", "LEFT"),
    "lower_leg_r": ("LOLEGR", "LOWER LEG", "RIGHT"),
    "lower_leg_l": ("LOLEGL", "LOWER LEG", "LEFT"),
    "foot_r": ("FOOTR", "FOOT, DORSUM", "RIGHT"),
    "foot_l": ("FOOTL", "FOOT, DORSUM", "LEFT"),
}
assert tuple(XS_AREAS) == mrss_scoring.AREAS  # nosec B101  # a table check at import
XS_TOTAL = ("MRSSTOT", "mRSS Total Skin Score")


def xs_test(area: str) -> str:
    return f"mRSS {english(Mrss._meta.get_field(area).verbose_name)}"


XS_VARS = (
    *_ident("XS"),
    Var("XSTESTCD", "Skin Finding Short Name", "Char", "Assigned",
        "One per area (README.txt) and MRSSTOT"),
    Var("XSTEST", "Skin Finding Name", "Char", "Assigned"),
    Var("XSCAT", "Category for Skin Finding", "Char", "Assigned", "MRSS"),
    Var("XSLOC", "Location of Skin Finding", "Char", "Assigned", "The body area"),
    Var("XSLAT", "Laterality", "Char", "Assigned", "RIGHT, LEFT or empty (midline)"),
    Var("XSORRES", "Result or Finding in Original Units", "Char", "CRF",
        "0 normal, 1 mild, 2 moderate, 3 severe; the total 0-51"),
    Var("XSSTRESC", "Character Result/Finding in Std Format", "Char", "Derived", "As XSORRES"),
    Var("XSSTRESN", "Numeric Result/Finding in Standard Units", "Num", "Derived"),
    Var("XSSTAT", "Completion Status", "Char", "Derived", "NOT DONE: area not assessable"),
    Var("XSREASND", "Reason Not Done", "Char", "CRF", "The reason an area is not assessable"),
    Var("XSDRVFL", "Derived Flag", "Char", "Derived", "Y for the total"),
    *_visit_vars("XS", "Date/Time of Examination"),
)  # fmt: skip


def xs_rows(source: Source) -> Iterator[dict]:
    forms = source.rows_of(Mrss.FORM_CODE, Mrss).values_list(
        "patient__subject_code",
        "patient__day0_date",
        "visit__code",
        "visit__repeat",
        "visit__sequence",
        "visit__visit_date",
        "visit__protocol_version_id",
        "exam_date",
        "not_assessable_reason",
        "total",
        *mrss_scoring.AREAS,
    )
    sequence = _Sequence()
    tests = {area: xs_test(area) for area in XS_AREAS}
    for (subject, day0, code, repeat, order, visit_day, version, examined, reason, total,
         *scores) in forms.iterator(chunk_size=CHUNK_SIZE):  # fmt: skip
        source.tick()
        name, _planned = source.visit(version, code, repeat or 1)
        day = examined or visit_day
        common = {
            "XSCAT": "MRSS",
            "VISITNUM": None if order is None else visit_number(order, repeat or 1),
            "VISIT": name,
            "XSDTC": day,
            "XSDY": study_day(day, day0),
        }
        for area, score in zip(mrss_scoring.AREAS, scores, strict=True):
            testcd, location, side = XS_AREAS[area]
            yield {
                **_base(source, "XS", subject, sequence.next(subject)),
                "XSTESTCD": testcd,
                "XSTEST": tests[area],
                "XSLOC": location,
                "XSLAT": side,
                "XSORRES": "" if score is None else str(score),
                "XSSTRESC": "" if score is None else str(score),
                "XSSTRESN": None if score is None else float(score),
                "XSSTAT": "NOT DONE" if score is None else "",
                "XSREASND": reason if score is None else "",
                "XSDRVFL": "",
                **common,
            }
        if total is not None:
            yield {
                **_base(source, "XS", subject, sequence.next(subject)),
                "XSTESTCD": XS_TOTAL[0],
                "XSTEST": XS_TOTAL[1],
                "XSLOC": "",
                "XSLAT": "",
                "XSORRES": str(total),
                "XSSTRESC": str(total),
                "XSSTRESN": float(total),
                "XSSTAT": "",
                "XSREASND": "",
                "XSDRVFL": "Y",
                **common,
            }


DOMAINS = (
    Domain("DM", "Demographics", DM_VARS, dm_rows),
    Domain("SV", "Subject Visits", SV_VARS, sv_rows),
    Domain("AE", "Adverse Events", AE_VARS, ae_rows, form=AdverseEvent.FORM_CODE),
    Domain("LB", "Laboratory Test Results", LB_VARS, lb_rows, form=SafetyLabs.FORM_CODE),
    Domain("QS", "Questionnaires", QS_VARS, qs_rows, form="dlqi haq"),
    Domain("XS", "Skin Findings (mRSS)", XS_VARS, xs_rows, form=Mrss.FORM_CODE),
)


def domains_for(forms) -> list[Domain]:
    """The domains an export of these form codes writes: DM and SV always, the others when
    their form is exported."""
    chosen = set(forms)
    return [d for d in DOMAINS if d.form is None or chosen & set(d.form.split())]


def records_total(source: Source, domain: Domain) -> int:
    """The records the domain reads (patients, visits, events, forms): its progress units."""
    if domain.code == "DM":
        return source.patients().count()
    if domain.code == "SV":
        visits = Visit.objects.filter(patient__study=source.study, visit_date__isnull=False)
        if source.sites:
            visits = visits.filter(patient__site__in=source.sites)
        return visits.count()
    total = 0
    for code in domain.form.split():
        dataset = source.datasets.get(code)
        if dataset is not None:
            total += dataset.count()
    return total
