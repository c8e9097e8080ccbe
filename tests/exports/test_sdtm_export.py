"""The SDTM-ready export of the seeded trial, read back with pandas (CSV and SAS transport)
and compared with the database: DM per patient, study days, the partial AE onset, the
French verbatim, lab units and ranges, the DLQI, HAQ and mRSS scores, define.csv; no arm
in a blinded export, the arm in an unblinded one."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pandas
import pyreadstat
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ecrf.crfs.models import ULN_ANALYTES, Demographics, Dlqi, Haq, Mrss, SafetyLabs
from ecrf.exports.sdtm_domains import DLQI_TESTS, HAQ_TESTS, LB_TESTS, XS_AREAS, study_day
from ecrf.exports.services import export_run
from ecrf.patients.models import Allocation, Patient, Visit
from ecrf.safety.models import AdverseEvent
from ecrf.studies.models import Study

RCT = "NCT00479934"
NAUSEA = "Nausées après les prises, sensation de réplétion gastrique"


def user(username):
    return get_user_model().objects.get(username=username)


def read_csv(path) -> pandas.DataFrame:
    return pandas.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def read_xpt(path) -> pandas.DataFrame:
    return pandas.read_sas(path, format="xport", encoding="utf-8")


def iso(value) -> str:
    return value.isoformat() if value else ""


def expected_day(day: date, day0: date) -> int:
    """SDTM's rule said again: day 0 is day 1, no day 0, the day before is -1."""
    difference = (day - day0).days
    return difference + 1 if day >= day0 else difference


@pytest.fixture
def rct(seeded):
    return Study.objects.get(code=RCT)


@pytest.fixture
def blinded(rct, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sdtm")
    progress = []
    export_run(
        study=rct,
        by=user("datamanager"),
        formats=["sdtm"],
        out_dir=folder,
        on_progress=lambda written, total: progress.append((written, total)),
    )
    return folder / "sdtm", progress


def test_study_days_have_no_day_zero():
    day0 = date(2026, 5, 17)
    assert study_day(day0, day0) == 1
    assert study_day(day0 - timedelta(days=1), day0) == -1
    assert study_day(day0 + timedelta(days=1), day0) == 2
    assert study_day(day0 - timedelta(days=12), day0) == -12
    assert study_day(day0 + timedelta(days=29), day0) == 30
    assert study_day(None, day0) is None and study_day(day0, None) is None


def test_dm_has_one_row_per_patient_as_the_database_holds_them(rct, blinded):
    folder, _progress = blinded
    dm = read_csv(folder / "dm.csv")
    xpt = read_xpt(folder / "dm.xpt")
    patients = list(
        Patient.objects.filter(study=rct).select_related("site").order_by("subject_code")
    )
    assert list(dm["SUBJID"]) == [p.subject_code for p in patients]
    assert list(dm["USUBJID"]) == [f"{RCT}-{p.subject_code}" for p in patients]
    assert list(xpt["USUBJID"]) == list(dm["USUBJID"])
    assert set(dm["STUDYID"]) == {RCT} and set(dm["DOMAIN"]) == {"DM"}
    assert set(dm["COUNTRY"]) == {"FRA"}
    for (_i, row), (_j, sas), patient in zip(dm.iterrows(), xpt.iterrows(), patients, strict=True):
        demographics = Demographics.objects.filter(patient=patient).get()
        assert row["SITEID"] == patient.site.code
        assert row["RFSTDTC"] == iso(patient.day0_date)
        assert row["RFICDTC"] == iso(patient.consent_date)
        assert row["SEX"] == demographics.sex
        assert row["BRTHDTC"] == f"{demographics.birth_year}-{demographics.birth_month:02d}"
        reference = patient.day0_date or patient.consent_date
        born = demographics.birth_year, demographics.birth_month
        age = reference.year - born[0] - (reference.month <= born[1])
        assert int(row["AGE"]) == age == int(sas["AGE"])
        assert sas["RFSTDTC"] == row["RFSTDTC"]
        # Blinded: no arm, for any patient.
        assert row["ARMCD"] == row["ARM"] == row["ACTARMCD"] == row["ACTARM"] == ""
    screen_failed = [p.subject_code for p in patients if p.status == "screen_failed"]
    failed = dm[dm["SUBJID"].isin(screen_failed)]
    assert len(failed) and set(failed["ARMNRS"]) == {"SCREEN FAILURE"}


def test_the_transport_files_fit_version_5(blinded):
    folder, _progress = blinded
    for path in sorted(folder.glob("*.xpt")):
        _frame, meta = pyreadstat.read_xport(path)
        assert meta.table_name == path.stem.upper()
        for name, label in zip(meta.column_names, meta.column_labels, strict=True):
            assert re.fullmatch(r"[A-Z][A-Z0-9]{0,7}", name), (path.name, name)
            assert label and len(label) <= 40, (path.name, name, label)
        assert list(read_csv(path.with_suffix(".csv")).columns) == meta.column_names


def test_visits_count_study_days_from_day_zero(rct, blinded):
    folder, _progress = blinded
    sv = read_csv(folder / "sv.csv")
    xpt = read_xpt(folder / "sv.xpt")
    visits = list(
        Visit.objects.filter(patient__study=rct, visit_date__isnull=False)
        .select_related("patient")
        .order_by("patient__subject_code", "sequence", "repeat")
    )
    assert len(sv) == len(visits) == len(xpt)
    for (_i, row), (_j, sas), visit in zip(sv.iterrows(), xpt.iterrows(), visits, strict=True):
        assert row["USUBJID"] == f"{RCT}-{visit.patient.subject_code}"
        assert row["SVSTDTC"] == visit.visit_date.isoformat()
        assert float(row["VISITNUM"]) == visit.sequence
        day0 = visit.patient.day0_date
        if day0 is None:
            assert row["SVSTDY"] == "" and pandas.isna(sas["SVSTDY"])
        else:
            assert int(row["SVSTDY"]) == expected_day(visit.visit_date, day0) == int(sas["SVSTDY"])
    # The inclusion visit is on day 0: study day 1; a pre-inclusion visit is negative.
    assert set(sv[sv["VISIT"] == "Inclusion"]["SVSTDY"]) == {"1"}
    assert all(int(day) < 0 for day in sv[sv["VISIT"] == "Pre-inclusion"]["SVSTDY"] if day)


def test_adverse_events_keep_the_partial_onset_and_the_french_verbatim(rct, blinded):
    folder, _progress = blinded
    ae = read_csv(folder / "ae.csv")
    xpt = read_xpt(folder / "ae.xpt")
    events = list(
        AdverseEvent.objects.filter(patient__study=rct)
        .select_related("patient")
        .order_by("patient__subject_code", "number")
    )
    assert list(ae["AETERM"]) == [event.term for event in events] == list(xpt["AETERM"])
    assert list(ae["AESTDTC"]) == [event.onset_date for event in events]
    nausea = ae[ae["AETERM"] == NAUSEA]
    assert len(nausea) == 1
    row = nausea.iloc[0]
    assert re.fullmatch(r"\d{4}-\d{2}", row["AESTDTC"])
    assert row["AESTDY"] == "" and row["AEREL"] == "PROBABLY RELATED" and row["AESER"] == "N"
    assert pandas.isna(xpt[xpt["AETERM"] == NAUSEA].iloc[0]["AESTDY"])
    for (_i, row), event in zip(ae.iterrows(), events, strict=True):
        if len(event.onset_date) == 10:
            onset = date.fromisoformat(event.onset_date)
            assert int(row["AESTDY"]) == expected_day(onset, event.patient.day0_date)
    per_subject = ae.groupby("USUBJID").AESEQ.apply(list)
    assert all(seqs == [str(n) for n in range(1, len(seqs) + 1)] for seqs in per_subject)


def test_labs_have_units_and_normal_ranges(rct, blinded):
    folder, _progress = blinded
    lb = read_csv(folder / "lb.csv")
    xpt = read_xpt(folder / "lb.xpt")
    forms = list(
        SafetyLabs.objects.filter(patient__study=rct)
        .select_related("patient", "visit")
        .order_by("patient__subject_code", "visit__sequence", "visit__repeat", "pk")
    )
    assert len(lb) == len(forms) * len(LB_TESTS) == len(xpt)
    rows = (row for _index, row in lb.iterrows())
    for form in forms:
        for analyte, (testcd, _test, _category, unit) in LB_TESTS.items():
            row = next(rows)
            value = getattr(form, analyte)
            assert (
                row["USUBJID"] == f"{RCT}-{form.patient.subject_code}" and row["LBTESTCD"] == testcd
            )
            assert row["LBORRES"] == ("" if value is None else str(value))
            assert row["LBORRESU"] == unit == row["LBSTRESU"]
            high = getattr(form, f"{analyte}_uln") if analyte in ULN_ANALYTES else None
            assert row["LBORNRHI"] == ("" if high is None else str(high))
            assert row["LBORNRLO"] == ""
            day = form.sample_date or form.visit.visit_date
            assert row["LBDTC"] == day.isoformat()
            day0 = form.patient.day0_date
            assert row["LBDY"] == ("" if day0 is None else str(expected_day(day, day0)))
    assert {"g/dL", "10^9/L", "umol/L", "U/L"} <= set(lb["LBORRESU"])
    assert (lb[lb["LBTESTCD"] == "ALT"]["LBORNRHI"] != "").all()
    # The corrected hemoglobin (a transcription error at M3) is the value exported.
    corrected = lb[(lb["USUBJID"] == f"{RCT}-BXP-001") & (lb["VISIT"] == "Month 3")]
    assert corrected[corrected["LBTESTCD"] == "HGB"].iloc[0]["LBORRES"] == "12.1"


def test_questionnaires_give_items_and_the_stored_totals(rct, blinded):
    folder, _progress = blinded
    qs = read_csv(folder / "qs.csv")
    xpt = read_xpt(folder / "qs.xpt")
    assert len(qs) == len(xpt)
    assert all(len(code) <= 8 for code in qs["QSTESTCD"])
    assert all(len(test.test) <= 40 for test in (*DLQI_TESTS, *HAQ_TESTS))
    assert set(qs["QSTESTCD"]) <= {test.testcd for test in (*DLQI_TESTS, *HAQ_TESTS)}
    dlqi = Dlqi.objects.filter(patient__study=rct, total__isnull=False).select_related(
        "patient", "visit"
    )
    assert dlqi.exists()
    totals = qs[qs["QSTESTCD"] == "DLQITOT"].set_index(["USUBJID", "QSDTC"])
    for form in dlqi:
        row = totals.loc[(f"{RCT}-{form.patient.subject_code}", form.visit.visit_date.isoformat())]
        assert int(row["QSSTRESN"]) == form.total and row["QSDRVFL"] == "Y"
    items = qs[(qs["QSCAT"] == "DLQI") & (qs["QSDRVFL"] == "")]
    first = dlqi.order_by("patient__subject_code", "visit__sequence").first()
    answers = items[
        (items["USUBJID"] == f"{RCT}-{first.patient.subject_code}")
        & (items["QSDTC"] == first.visit.visit_date.isoformat())
    ]
    scores = {"very_much": 3, "a_lot": 2, "a_little": 1, "not_at_all": 0, "NR": 0, "yes": 3}
    # The items' scores add up to the stored total (nothing imputed in the demo).
    assert sum(int(s) for s in answers["QSSTRESN"] if s) == first.total
    assert int(answers[answers["QSTESTCD"] == "DLQI01"].iloc[0]["QSSTRESN"]) == scores[first.q1]
    haq = Haq.objects.filter(patient__study=rct, di__isnull=False)
    haq = haq.select_related("patient", "visit")
    assert haq.exists()
    indexes = qs[qs["QSTESTCD"] == "HAQDI"].set_index(["USUBJID", "QSDTC"])
    sas = xpt[xpt["QSTESTCD"] == "HAQDI"].set_index(["USUBJID", "QSDTC"])
    for form in haq:
        key = (f"{RCT}-{form.patient.subject_code}", form.visit.visit_date.isoformat())
        assert float(indexes.loc[key]["QSSTRESN"]) == pytest.approx(form.di)
        assert float(sas.loc[key]["QSSTRESN"]) == pytest.approx(form.di)


def test_the_mrss_is_a_findings_domain_with_its_total(rct, blinded):
    folder, _progress = blinded
    xs = read_csv(folder / "xs.csv")
    xpt = read_xpt(folder / "xs.xpt")
    forms = Mrss.objects.filter(patient__study=rct).select_related("patient", "visit")
    areas = xs[xs["XSTESTCD"] != "MRSSTOT"]
    assert len(areas) == forms.count() * 17
    assert set(areas["XSTESTCD"]) == {testcd for testcd, _loc, _side in XS_AREAS.values()}
    totals = xs[xs["XSTESTCD"] == "MRSSTOT"].set_index(["USUBJID", "XSDTC"])
    sas = xpt[xpt["XSTESTCD"] == "MRSSTOT"].set_index(["USUBJID", "XSDTC"])
    for form in forms:
        day = (form.exam_date or form.visit.visit_date).isoformat()
        key = (f"{RCT}-{form.patient.subject_code}", day)
        if form.total is None:
            assert key not in totals.index
            continue
        assert int(totals.loc[key]["XSSTRESN"]) == form.total == int(sas.loc[key]["XSSTRESN"])
        face = areas[
            (areas["USUBJID"] == key[0]) & (areas["XSDTC"] == day) & (areas["XSTESTCD"] == "FACE")
        ]
        assert face.iloc[0]["XSORRES"] == str(form.face)
    readme = (folder / "README.txt").read_text(encoding="utf-8")
    assert "XS: a custom findings domain" in readme and "MRSSTOT" in readme


def test_define_lists_every_variable_of_every_domain(blinded):
    folder, progress = blinded
    define = read_csv(folder / "define.csv")
    assert list(define.columns) == [
        "dataset",
        "variable",
        "label",
        "type",
        "length",
        "origin",
        "notes",
    ]
    domains = sorted(path.stem.upper() for path in folder.glob("*.xpt"))
    assert domains == ["AE", "DM", "LB", "QS", "SV", "XS"]
    assert sorted(set(define.dataset)) == domains
    for domain in domains:
        frame, meta = pyreadstat.read_xport(folder / f"{domain.lower()}.xpt")
        listed = define[define.dataset == domain]
        assert list(listed.variable) == meta.column_names
        assert list(listed.label) == meta.column_labels
        for row in listed.itertuples():
            numeric = meta.readstat_variable_types[row.variable] == "double"
            assert row.type == ("Num" if numeric else "Char"), (domain, row.variable)
            assert row.origin in {"CRF", "Derived", "Assigned", "Protocol"}
            if not numeric:
                assert int(row.length) == meta.variable_storage_width[row.variable]
    # The progress reached its total: every record read was counted.
    assert progress and progress[-1][0] == progress[-1][1] > 0


def _arm_words(study) -> list[str]:
    arms = study.current_protocol.protocol.arms
    words = [arm.code for arm in arms] + [arm.label_en for arm in arms]
    return words + [arm.label_fr for arm in arms if arm.label_fr]


def test_a_blinded_sdtm_export_names_no_arm(rct, blinded):
    folder, _progress = blinded
    assert Allocation.objects.filter(study=rct, patient__isnull=False).exists()
    for path in sorted(folder.iterdir()):
        content = path.read_bytes().decode("utf-8", errors="replace")
        for word in _arm_words(rct):
            assert not re.search(rf"\b{re.escape(word)}\b", content, re.IGNORECASE), (path, word)


def test_an_unblinded_sdtm_export_gives_the_arm_allocated(rct, tmp_path):
    export_run(
        study=rct,
        by=user("admin"),
        formats=["sdtm"],
        forms=["demographics"],
        unblinded=True,
        out_dir=tmp_path,
    )
    dm = read_csv(tmp_path / "sdtm" / "dm.csv")
    arms = {arm.code: arm.label_en for arm in rct.current_protocol.protocol.arms}
    stored = dict(
        Allocation.objects.filter(study=rct, patient__isnull=False).values_list(
            "patient__subject_code", "arm"
        )
    )
    assert stored
    for _index, row in dm.iterrows():
        arm = stored.get(row["SUBJID"], "")
        assert row["ARMCD"] == arm == row["ACTARMCD"]
        assert row["ARM"] == arms.get(arm, "") == row["ACTARM"]
    # Only DM and SV: the forms asked for have no other domain.
    assert sorted(path.name for path in (tmp_path / "sdtm").glob("*.xpt")) == ["dm.xpt", "sv.xpt"]


def test_a_site_export_holds_only_its_patients(rct, tmp_path):
    export_run(study=rct, by=user("datamanager"), formats=["sdtm"], sites=["STR"], out_dir=tmp_path)
    folder = tmp_path / "sdtm"
    expected = {
        f"{RCT}-{code}"
        for code in Patient.objects.filter(study=rct, site__code="STR").values_list(
            "subject_code", flat=True
        )
    }
    assert set(read_csv(folder / "dm.csv")["USUBJID"]) == expected
    for name in ("sv", "lb", "qs", "xs"):
        assert set(read_csv(folder / f"{name}.csv")["USUBJID"]) <= expected, name


def test_the_queries_do_not_grow_with_the_rows(rct, tmp_path):
    """One server-side cursor per domain, whatever its rows: Bordeaux's six patients cost
    the queries Strasbourg's two do."""
    counts, rows = {}, {}
    for site in ("BXP", "STR"):
        with CaptureQueriesContext(connection) as queries:
            record = export_run(
                study=rct,
                by=user("datamanager"),
                formats=["sdtm"],
                sites=[site],
                out_dir=tmp_path / site,
            )
        counts[site] = len(queries)
        rows[site] = sum(file.get("rows", 0) for file in record.files)
    assert rows["BXP"] > rows["STR"]
    assert counts["BXP"] == counts["STR"]
