"""`sdtm`: SDTM-ready datasets, each as `sdtm/<domain>.xpt` (SAS transport version 5,
member name = domain) and `sdtm/<domain>.csv` (RFC 4180, UTF-8), with a variable-level
`sdtm/define.csv` and `sdtm/README.txt` (the custom domain, the test codes, the rules).

The domains and their rows are in `ecrf.exports.sdtm_domains`; this writes them one
domain at a time: the CSV as the rows come, the transport file from that one domain's
frame (pyreadstat needs a whole frame).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas
import pyreadstat

from ecrf.exports.sdtm_domains import (
    DLQI_TESTS,
    HAQ_TESTS,
    XS_AREAS,
    XS_TOTAL,
    Domain,
    Source,
    domains_for,
    records_total,
    xs_test,
)
from ecrf.exports.writers import Writer
from ecrf.exports.writers.csv_writer import cell, write_csv

DEFINE_COLUMNS = ("dataset", "variable", "label", "type", "length", "origin", "notes")


def _source(context) -> Source:
    request = context.request
    return Source(
        study=request.study,
        sites=request.sites,
        unblinded=request.unblinded,
        datasets={dataset.code: dataset for dataset in context.datasets},
        tick=context.tick,
    )


def _domains(context) -> list[Domain]:
    return domains_for(context.request.forms)


def total(context) -> int:
    source = _source(context)
    return sum(records_total(source, domain) for domain in _domains(context))


def _number(value) -> str:
    """A numeric variable in the CSV: 12, 0.375; empty for missing."""
    if value is None:
        return ""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _write_domain(domain: Domain, source: Source, folder: Path) -> tuple[int, dict[str, int]]:
    """The domain's CSV and transport file; its rows and each variable's length."""
    names = [variable.name for variable in domain.variables]
    columns: dict[str, list] = {name: [] for name in names}
    rows = 0
    with (folder / f"{domain.code.lower()}.csv").open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\r\n")
        writer.writerow(names)
        numeric = [variable.numeric for variable in domain.variables]
        for row in domain.rows(source):
            values = [row.get(name) for name in names]
            writer.writerow(
                [
                    _number(value) if is_number else cell(value)
                    for value, is_number in zip(values, numeric, strict=True)
                ]
            )
            for name, value in zip(names, values, strict=True):
                columns[name].append(value)
            rows += 1
    frame = {}
    lengths = {}
    for variable in domain.variables:
        values = columns.pop(variable.name)
        if variable.numeric:
            frame[variable.name] = pandas.Series(
                [float("nan") if v is None else float(v) for v in values], dtype="float64"
            )
            lengths[variable.name] = 8
        else:
            texts = [cell(value) for value in values]
            frame[variable.name] = pandas.Series(texts, dtype=object)
            lengths[variable.name] = max((len(t.encode("utf-8")) for t in texts), default=0) or 1
    pyreadstat.write_xport(
        pandas.DataFrame(frame, columns=names),
        folder / f"{domain.code.lower()}.xpt",
        file_label=domain.label,
        column_labels=[variable.label for variable in domain.variables],
        table_name=domain.code,
        file_format_version=5,
    )
    return rows, lengths


def _readme(domains: list[Domain], source: Source) -> str:
    lines = [
        f"SDTM-ready datasets of {source.study.code}",
        "",
        "Each domain is written twice: <domain>.xpt (SAS transport version 5, member name",
        "= the domain) and <domain>.csv (RFC 4180, UTF-8). define.csv describes every",
        "variable (dataset, variable, label, type, length, origin, notes).",
        "",
        "Domains: " + ", ".join(f"{d.code} ({d.label})" for d in domains) + ".",
        "",
        "Identifiers: USUBJID = STUDYID-SUBJID, SUBJID = the subject code.",
        "Dates: --DTC in ISO 8601; a partial adverse-event onset keeps its precision",
        "(YYYY-MM) and then has no --STDY. BRTHDTC is YYYY-MM: no day of birth is collected.",
        "Study days: day 0 of the protocol (the inclusion, randomisation, date; RFSTDTC) is",
        "study day 1, the day before is -1; there is no day 0.",
        "VISITNUM: the protocol's order of the visit; the 2nd, 3rd... occurrence of a",
        "repeated (unscheduled) visit adds .01, .02...",
        "",
        "Arms: a blinded export leaves ARMCD, ARM, ACTARMCD and ACTARM empty for the",
        "randomised patients (ARMNRS is empty for them too: the arm is withheld, not",
        "missing); an unblinded export gives the arm allocated. ARMNRS says SCREEN FAILURE",
        "or NOT ASSIGNED for patients with no arm. An observational study's group is",
        "written as ARMCD/ARM either way (it is no allocation).",
        "",
        "LB: the safety laboratory form, one row per analyte and form, units as CDISC",
        "writes them. The form records the site laboratory's upper normal limit (ULN) for",
        "bilirubin, AST, ALT and creatinine: LBORNRHI/LBSTNRHI; no lower limit is",
        "collected, so LBORNRLO is empty, as are the ranges of hemoglobin, neutrophils",
        "and platelets. LBNRIND: HIGH above the ULN, NORMAL at or below it.",
    ]
    if any(d.code == "QS" for d in domains):
        lines += ["", "QS test codes (QSCAT, QSTESTCD: QSTEST):"]
        for test in (*DLQI_TESTS, *HAQ_TESTS):
            derived = " (derived)" if test.derived else ""
            lines.append(f"  {test.category:<5} {test.testcd:<8}: {test.test}{derived}")
    if any(d.code == "XS" for d in domains):
        lines += [
            "",
            "XS: a custom findings domain for the modified Rodnan skin score (mRSS). SDTM",
            "reserves domain codes starting with X, Y or Z for sponsor-defined domains, so",
            "that no future CDISC domain takes the name: XS, 'skin findings'. One row per",
            "area (0 normal to 3 severe, XSLOC/XSLAT the body area) and one for the total",
            "(0-51, derived, XSDRVFL = Y; written only when every area is scored). An area",
            "not assessable has XSSTAT = NOT DONE and its reason in XSREASND.",
            "XS test codes (XSTESTCD: XSTEST):",
        ]
        for area, (testcd, _location, _side) in XS_AREAS.items():
            lines.append(f"  {testcd:<8}: {xs_test(area)}")
        lines.append(f"  {XS_TOTAL[0]:<8}: {XS_TOTAL[1]}")
    return "\r\n".join(lines) + "\r\n"


def write(context) -> list[dict]:
    folder = context.folder("sdtm")
    source = _source(context)
    domains = _domains(context)
    files, define = [], []
    for domain in domains:
        rows, lengths = _write_domain(domain, source, folder)
        for suffix in ("xpt", "csv"):
            files.append(context.entry(folder / f"{domain.code.lower()}.{suffix}", rows))
        define += [
            (domain.code, v.name, v.label, v.type, lengths[v.name], v.origin, v.notes)
            for v in domain.variables
        ]
    path = folder / "define.csv"
    files.append(context.entry(path, write_csv(path, DEFINE_COLUMNS, define)))
    path = folder / "README.txt"
    path.write_text(_readme(domains, source), encoding="utf-8", newline="")
    files.append(context.entry(path))
    return files


WRITERS = {"sdtm": Writer(write=write, total=total)}
