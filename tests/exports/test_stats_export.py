"""The SAS, Stata and SPSS exports of the seeded studies, read back with pandas.read_sas
and pyreadstat and compared with the database: names, labels, value labels, dates,
blinding, the manifest."""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas
import pyreadstat
from django.utils import translation
from django.utils.text import capfirst

from ecrf.crfs.models import Mrss, SafetyLabs, SkinBiopsy
from ecrf.exports.datasets import AE_LOG, ae_dataset, form_dataset
from ecrf.exports.services import export_run
from ecrf.exports.writers.stats import unique_names
from ecrf.patients.models import Allocation
from ecrf.safety.models import AdverseEvent
from tests.exports.test_xlsx_export import (
    NAUSEA,
    database_rows,
    user,
)
from tests.exports.test_xlsx_export import cohort as cohort  # noqa: F401 (fixture)
from tests.exports.test_xlsx_export import rct as rct  # noqa: F401 (fixture)

SAS_EPOCH = date(1960, 1, 1)
# pandas reads the IBM float zero of a transport file (eight zero bytes, as SAS writes it)
# as the smallest IBM float, 16**-65: pandas-dev/pandas#50670, open. SAS reads 0.
PANDAS_XPORT_ZERO = 16.0**-65


def read_csv(path) -> pandas.DataFrame:
    return pandas.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def export(study, tmp_path, fmt, **asked):
    asked.setdefault("by", user("datamanager"))
    record = export_run(study=study, formats=[fmt], out_dir=tmp_path, **asked)
    return record, json.loads((tmp_path / "manifest.json").read_text())


def is_missing(cell) -> bool:
    return cell is None or cell == "" or bool(pandas.isna(cell))


def same_value(cell, value) -> bool:
    """A value read back (dates already dates) against the database's."""
    if value is None or value == "":
        return is_missing(cell)
    if isinstance(value, bool):
        return cell == float(value)
    if isinstance(value, (int, float, Decimal)):
        return isinstance(cell, float) and Decimal(repr(cell)) == Decimal(str(value))
    if isinstance(value, datetime):  # UTC, to the millisecond
        moment = value.astimezone(UTC).replace(tzinfo=None)
        return abs(pandas.Timestamp(cell).to_pydatetime() - moment) < timedelta(milliseconds=1)
    if isinstance(value, date):
        return cell == value or (isinstance(cell, datetime) and cell.date() == value)
    if isinstance(value, dict):
        return json.loads(cell) == value
    return cell == str(value)


def compare(study, code, frame: pandas.DataFrame, decode=None) -> int:
    """The frame (columns under the dictionary's names) against the database, value by
    value; `decode(name, cell)` turns a cell back into what the database holds."""
    header, expected_rows = database_rows(study, code)
    assert list(frame.columns) == header, code
    assert len(frame) == len(expected_rows), code
    for row, expected in zip(frame.itertuples(index=False), expected_rows, strict=True):
        for name, cell, value in zip(header, row, expected, strict=True):
            if decode is not None:
                cell = decode(name, cell)
            assert same_value(cell, value), (code, name, cell, value)
    return len(expected_rows)


def arm_words(study) -> re.Pattern:
    arms = study.current_protocol.protocol.arms
    words = [arm.code for arm in arms] + [arm.label_en for arm in arms]
    words += [arm.label_fr for arm in arms if arm.label_fr]
    return re.compile("|".join(rf"\b{re.escape(word)}\b" for word in words), re.IGNORECASE)


# -- sas ----------------------------------------------------------------------------------


def read_xpt(folder, code) -> pandas.DataFrame:
    """A transport file with pandas, its columns renamed to the dictionary's from names.csv,
    its dates (SAS day numbers, seconds) turned into dates."""
    names = read_csv(folder / "names.csv")
    names = names[names.dataset == code]
    frame = pandas.read_sas(folder / f"{code}.xpt", format="xport", encoding="utf-8")
    assert list(frame.columns) == list(names.sas_name)
    frame = frame.replace(PANDAS_XPORT_ZERO, 0.0)
    meta = pyreadstat.read_xport(folder / f"{code}.xpt", metadataonly=True)[1]
    for name, sas_format in meta.original_variable_types.items():
        if sas_format == "YYMMDD10.":
            frame[name] = [
                None if math.isnan(days) else SAS_EPOCH + timedelta(days=days)
                for days in frame[name]
            ]
        elif sas_format == "E8601DT19.":
            frame[name] = [
                None if math.isnan(seconds) else datetime(1960, 1, 1) + timedelta(seconds=seconds)
                for seconds in frame[name]
            ]
    # A text longer than 200 bytes comes in parts: joined again.
    joined = {}
    for sas_name, variable in zip(names.sas_name, names.variable, strict=True):
        if variable in joined:
            joined[variable] = joined[variable] + frame[sas_name]
        else:
            joined[variable] = frame[sas_name]
    return pandas.DataFrame(joined)


def test_the_trial_in_sas_transport_files_reads_back_as_the_database_holds_it(rct, tmp_path):
    _record, manifest = export(rct, tmp_path, "sas")
    folder = tmp_path / "sas"
    names = read_csv(folder / "names.csv")
    compared = sum(compare(rct, code, read_xpt(folder, code)) for code in manifest["forms"])
    assert compared > 100
    # Version 5: names of 8 characters and labels of 40 at most, unique in each dataset.
    assert names.sas_name.str.len().max() <= 8 and names.member.str.len().max() <= 8
    assert not names.duplicated(["dataset", "sas_name"]).any()
    assert set(names.member) == {
        pyreadstat.read_xport(folder / f"{code}.xpt", metadataonly=True)[1].table_name
        for code in manifest["forms"]
    }
    meta = pyreadstat.read_xport(folder / "mrss.xpt", metadataonly=True)[1]
    labels = dict(
        zip(
            names[names.dataset == "mrss"].sas_name,
            names[names.dataset == "mrss"].label,
            strict=True,
        )
    )
    for name, label in meta.column_names_to_labels.items():
        assert len(label.encode()) <= 40
        assert label == labels[name] or (
            label.endswith("...") and labels[name].startswith(label[:-3])
        )
    total = names[(names.dataset == "mrss") & (names.variable == "total")].iloc[0]
    with translation.override("en"):
        assert total.label == capfirst(Mrss._meta.get_field("total").verbose_name)
    # The derived score and a missing value.
    frame = read_xpt(folder, "mrss")
    _header, rows = database_rows(rct, "mrss")
    assert list(frame.total) == [float(row[_header.index("total")]) for row in rows]
    assert any(read_xpt(folder, code).isna().any().any() for code in manifest["forms"])
    # Dates with a date format; decimals shown with their places.
    labs = names[names.dataset == "safety_labs"].set_index("variable").sas_name
    meta = pyreadstat.read_xport(folder / "safety_labs.xpt", metadataonly=True)[1]
    assert meta.original_variable_types[labs["visit_date"]] == "YYMMDD10."
    field = SafetyLabs._meta.get_field("neutrophils_x10e9_l")
    width = f"{field.max_digits + 2}.{field.decimal_places}"
    assert meta.original_variable_types[labs["neutrophils_x10e9_l"]] == width


def test_the_adverse_event_log_in_sas_keeps_the_french_verbatim_and_the_partial_onset(
    rct, tmp_path
):
    export(rct, tmp_path, "sas", forms=[AE_LOG])
    log = read_xpt(tmp_path / "sas", AE_LOG)
    nausea = log[log.term == NAUSEA].iloc[0]
    event = AdverseEvent.objects.get(term=NAUSEA)
    assert re.fullmatch(r"\d{4}-\d{2}", nausea.onset_date) and nausea.onset_date == event.onset_date
    assert nausea.relatedness == "probable" and nausea.serious == 0.0
    assert nausea.end_date is None


def sas_formats(program: str) -> dict[str, dict[str, str]]:
    """PROC FORMAT's formats: name -> {code as written: label}."""
    block = program.split("proc format;", 1)[1].split("run;", 1)[0]
    found, current = {}, None
    for line in block.splitlines():
        line = line.strip().rstrip(";")
        if line.startswith("value "):
            current = found.setdefault(line.split()[1], {})
        elif "=" in line:
            code, label = (part.strip() for part in line.split(" = ", 1))
            current[code.strip("'")] = label.strip("'").replace("''", "'")
    return found


def sas_steps(program: str) -> dict[str, dict]:
    """Each DATA step: the transport file it reads -> its formats, labels and renames."""
    steps = {}
    for chunk in program.split("libname xpt xport ")[1:]:
        file = re.match(r'"&dir/([^"]+)"', chunk).group(1)
        step = {"work": re.search(r"data work\.(\w+);", chunk).group(1)}
        for keyword in ("format", "label", "rename"):
            match = re.search(rf"\n  {keyword}\n(.*?);\n", chunk, re.S)
            items = match.group(1).split("\n") if match else []
            step[keyword] = [item.strip() for item in items]
        steps[file] = step
    return steps


def test_formats_sas_defines_and_applies_every_value_label(rct, tmp_path):
    _record, manifest = export(rct, tmp_path, "sas")
    folder = tmp_path / "sas"
    program = (folder / "formats.sas").read_text(encoding="utf-8")
    formats = sas_formats(program)
    steps = sas_steps(program)
    names = read_csv(folder / "names.csv")
    assert set(steps) == {f"{code}.xpt" for code in manifest["forms"]}
    assert formats["YESNO"] == {"1": "Yes", "0": "No"}
    applied_somewhere = set()
    for code in manifest["forms"]:
        step = steps[f"{code}.xpt"]
        assert step["work"] == code  # every dataset code fits SAS 9's 32 characters
        applied = dict(item.rsplit(" ", 1) for item in step["format"])
        mapping = names[names.dataset == code]
        sas_name = dict(zip(mapping.variable, mapping.sas_name, strict=False))
        dataset = ae_dataset(rct, []) if code == AE_LOG else form_dataset(code, [], rct, [])
        for variable in dataset.columns:
            if not variable.codes:
                assert sas_name[variable.name] not in applied
                continue
            name = applied[sas_name[variable.name]].rstrip(".")
            applied_somewhere.add(name)
            text = not all(isinstance(c, int) for c, *_ in variable.codes)
            assert name.startswith("$") == text, (code, variable.name)
            assert not name[-1].isdigit()
            assert formats[name] == {str(c): label for c, label, _fr in variable.codes}
        # The step gives back the dictionary's names and the labels cut to 40 characters.
        renames = dict(item.split(" = ") for item in step["rename"])
        for variable, part, short in zip(
            mapping.variable, mapping.part, mapping.sas_name, strict=True
        ):
            number = part.split(" of ")[0]
            name = variable if number in ("", "1") else f"{variable}_part{number}"
            if name.casefold() != short.casefold():
                assert renames[short] == name
        for item in step["label"]:
            short, label = item.split(" = ", 1)
            full = mapping[mapping.sas_name == short].iloc[0].label
            assert label == "'" + full.replace("'", "''") + "'" and len(full) > 40
    assert set(formats) == applied_somewhere
    assert "mrss.xpt" in steps and "set xpt.MRSS;" in program
    # Status of the form: a text code with its label.
    status = [f for f in formats.values() if "not_started" in f]
    assert status and all(label for label in status[0].values())


def test_a_text_longer_than_sas_version_5_allows_is_split_into_parts(rct, tmp_path):
    biopsy = SkinBiopsy.objects.filter(patient__study=rct).order_by("pk").first()
    assert biopsy is not None
    notes = ("Épaississement cutané marqué, biopsie de l'avant-bras gauche. " * 8).strip()
    assert len(notes.encode()) > 400
    SkinBiopsy.objects.filter(pk=biopsy.pk).update(notes=notes)
    export(rct, tmp_path, "sas", forms=["skin_biopsy"])
    folder = tmp_path / "sas"
    names = read_csv(folder / "names.csv")
    parts = names[names.variable == "notes"]
    assert len(parts) == 3 and list(parts.part) == ["1 of 3", "2 of 3", "3 of 3"]
    frame = pandas.read_sas(folder / "skin_biopsy.xpt", format="xport", encoding="utf-8")
    row = frame[
        frame[names[names.variable == "subject_code"].iloc[0].sas_name]
        == biopsy.patient.subject_code
    ]
    pieces = [row.iloc[0][name] for name in parts.sas_name]
    assert all(len(piece.encode()) <= 200 for piece in pieces)
    assert "".join(pieces) == notes


# -- stata --------------------------------------------------------------------------------


def read_dta(folder, code):
    frame, meta = pyreadstat.read_dta(folder / f"{code}.dta")
    names_file = folder / "names.csv"
    if names_file.exists():
        names = read_csv(names_file)
        names = names[names.dataset == code]
        assert list(frame.columns) == list(names.stata_name)
        frame.columns = list(names.variable)
    return frame, meta


def test_the_trial_in_stata_reads_back_with_its_labels(rct, tmp_path):
    _record, manifest = export(rct, tmp_path, "stata")
    folder = tmp_path / "stata"
    mapping = read_csv(folder / "value_labels.csv")
    codes = {
        (row.dataset, row.variable, float(row.value)): row.code for row in mapping.itertuples()
    }
    compared = 0
    for code in manifest["forms"]:
        frame, _meta = read_dta(folder, code)

        def decode(name, cell, code=code):
            if (code, name, cell) in codes:
                return codes[(code, name, cell)]
            return cell

        compared += compare(rct, code, frame, decode)
    assert compared > 100
    frame, meta = pyreadstat.read_dta(folder / "demographics.dta")
    # A text code as an integer labelled "code: label", the mapping in value_labels.csv.
    sex = meta.variable_value_labels["sex"]
    assert sex == {
        int(row.value): row.label
        for row in mapping[
            (mapping.dataset == "demographics") & (mapping.variable == "sex")
        ].itertuples()
    }
    assert set(sex.values()) == {"F: Female", "M: Male"}
    assert meta.column_names_to_labels["sex"] == "Sex"
    frame, meta = pyreadstat.read_dta(folder / "mrss.dta")
    with translation.override("en"):
        scores = {code: str(label) for code, label in Mrss._meta.get_field("face").choices}
    assert meta.variable_value_labels["face"] == scores
    assert meta.variable_value_labels["face"][0] == "0 normal"
    assert meta.original_variable_types["visit_date"].startswith("%td")
    assert (folder / "mrss.dta").read_bytes().startswith(b"<stata_dta><header><release>118<")
    log, meta = pyreadstat.read_dta(folder / f"{AE_LOG}.dta")
    nausea = log[log.term == NAUSEA].iloc[0]
    assert nausea.onset_date == AdverseEvent.objects.get(term=NAUSEA).onset_date
    assert meta.variable_value_labels["serious"] == {1: "Yes", 0: "No"}
    assert meta.original_variable_types["aware_at"].startswith("%tc")


def test_the_cohort_in_stata_keeps_its_repeated_cultures_and_its_long_names(cohort, tmp_path):
    _record, manifest = export(cohort, tmp_path, "stata")
    folder = tmp_path / "stata"
    mapping = read_csv(folder / "value_labels.csv")
    codes = {
        (row.dataset, row.variable, float(row.value)): row.code for row in mapping.itertuples()
    }
    for code in manifest["forms"]:
        frame, _meta = read_dta(folder, code)
        compare(
            cohort, code, frame, lambda name, cell, code=code: codes.get((code, name, cell), cell)
        )
    # A name longer than Stata's 32 characters, shortened and listed; its value label set
    # (named after it and a number by pyreadstat) fits too.
    names = read_csv(folder / "names.csv")
    long = names[names.variable == "better_explained_by_other_disorder"].iloc[0]
    assert len(long.stata_name) < 32 and long.dataset == "ssc_classification"
    assert not names.duplicated(["dataset", "stata_name"]).any()
    frame, meta = pyreadstat.read_dta(folder / "ssc_classification.dta")
    assert meta.variable_value_labels[long.stata_name] == {1: "Yes", 0: "No"}
    assert all(len(name) <= 32 for name in meta.variable_to_label.values())
    frame, meta = pyreadstat.read_dta(
        tmp_path / "stata" / "mdm_cytokines.dta", apply_value_formats=True
    )
    assert frame.groupby(["subject_code", "visit_code"])["condition"].nunique().max() > 1
    # The labels read back carry the original codes.
    _header, rows = database_rows(cohort, "mdm_cytokines")
    index = _header.index("condition")
    assert [label.split(": ")[0] for label in frame.condition] == [row[index] for row in rows]


# -- spss ---------------------------------------------------------------------------------


def test_the_trial_in_spss_reads_back_with_its_labels(rct, tmp_path):
    _record, manifest = export(rct, tmp_path, "spss")
    folder = tmp_path / "spss"
    assert not (folder / "names.csv").exists()  # every name fits SPSS's 64 bytes
    compared = 0
    for code in manifest["forms"]:
        frame, _meta = pyreadstat.read_sav(folder / f"{code}.sav")
        compared += compare(rct, code, frame)
    assert compared > 100
    frame, meta = pyreadstat.read_sav(folder / "demographics.sav")
    assert meta.variable_value_labels["sex"] == {"F": "Female", "M": "Male"}
    assert meta.column_names_to_labels["sex"] == "Sex"
    log, meta = pyreadstat.read_sav(folder / f"{AE_LOG}.sav")
    assert meta.variable_value_labels["serious"] == {1.0: "Yes", 0.0: "No"}
    assert meta.original_variable_types["end_date"] == "SDATE10"
    nausea = log[log.term == NAUSEA].iloc[0]
    assert nausea.onset_date == AdverseEvent.objects.get(term=NAUSEA).onset_date
    assert meta.variable_measure["term"] == "nominal"
    meta = pyreadstat.read_sav(folder / "safety_labs.sav", metadataonly=True)[1]
    field = SafetyLabs._meta.get_field("neutrophils_x10e9_l")
    assert meta.original_variable_types["neutrophils_x10e9_l"] == (
        f"F{field.max_digits + 2}.{field.decimal_places}"
    )
    assert meta.variable_measure["neutrophils_x10e9_l"] == "scale"


def test_the_cohort_in_spss_keeps_its_repeated_cultures(cohort, tmp_path):
    export(cohort, tmp_path, "spss")
    frame, meta = pyreadstat.read_sav(tmp_path / "spss" / "mdm_cytokines.sav")
    compare(cohort, "mdm_cytokines", frame)
    assert frame.groupby(["subject_code", "visit_code"])["condition"].nunique().max() > 1
    assert set(frame.condition) <= set(meta.variable_value_labels["condition"])


# -- every format -------------------------------------------------------------------------

STATS = ("sas", "stata", "spss")


def read_back(folder, fmt, code):
    """Values and every label of one file, as the tool reads it."""
    if fmt == "sas":
        frame, meta = pyreadstat.read_xport(folder / f"{code}.xpt")
        labels = {}
    elif fmt == "stata":
        frame, meta = pyreadstat.read_dta(folder / f"{code}.dta")
        labels = meta.variable_value_labels
    else:
        frame, meta = pyreadstat.read_sav(folder / f"{code}.sav")
        labels = meta.variable_value_labels
    texts = [str(value) for column in frame.columns for value in frame[column]]
    texts += [str(label) for label in meta.column_names_to_labels.values()]
    texts += [str(v) for values in labels.values() for pair in values.items() for v in pair]
    texts += [meta.file_label or "", meta.table_name or ""]
    return texts


def test_a_blinded_export_names_no_arm_in_any_statistics_file(rct, tmp_path):
    assert Allocation.objects.filter(study=rct, patient__isnull=False).exists()
    export_run(study=rct, formats=list(STATS), by=user("admin"), out_dir=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    pattern = arm_words(rct)
    for fmt in STATS:
        folder = tmp_path / fmt
        assert not list(folder.glob("allocation.*"))
        for code in manifest["forms"]:
            for text in read_back(folder, fmt, code):
                assert not pattern.search(text), (fmt, code, text)
        for path in [*folder.glob("*.csv"), *folder.glob("*.sas")]:
            assert not pattern.search(path.read_text(encoding="utf-8")), path


def test_an_unblinded_export_has_the_allocation_in_each_format(rct, tmp_path):
    export_run(
        study=rct,
        formats=list(STATS),
        by=user("admin"),
        unblinded=True,
        forms=["mrss"],
        out_dir=tmp_path,
    )
    stored = list(
        Allocation.objects.filter(study=rct, patient__isnull=False)
        .order_by("patient__subject_code")
        .values_list("patient__subject_code", "site__code", "kit_number", "arm")
    )
    assert stored
    sas = read_xpt(tmp_path / "sas", "allocation")
    stata = pyreadstat.read_dta(tmp_path / "stata" / "allocation.dta")[0]
    spss = pyreadstat.read_sav(tmp_path / "spss" / "allocation.sav")[0]
    for frame in (sas, stata, spss):
        assert list(frame.columns) == ["subject_code", "site", "kit_number", "arm"]
        assert [tuple(row) for row in frame.itertuples(index=False)] == stored


def test_the_manifest_lists_each_file_with_its_rows_and_checksum(rct, tmp_path):
    record = export_run(
        study=rct, formats=list(STATS), by=user("datamanager"), sites=["BXP"], out_dir=tmp_path
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    listed = {entry["name"]: entry for entry in manifest["files"]}
    written = {
        path.relative_to(tmp_path).as_posix()
        for path in tmp_path.rglob("*")
        if path.is_file() and path.name != "manifest.json"
    }
    assert set(listed) == written
    readers = {
        ".xpt": lambda p: pandas.read_sas(p, format="xport", encoding="utf-8"),
        ".dta": lambda p: pyreadstat.read_dta(p)[0],
        ".sav": lambda p: pyreadstat.read_sav(p)[0],
        ".csv": read_csv,
    }
    for name, entry in listed.items():
        path = tmp_path / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], name
        if path.suffix == ".sas":
            assert "rows" not in entry
        else:
            assert entry["rows"] == len(readers[path.suffix](path)), name
    assert set(pyreadstat.read_sav(tmp_path / "spss" / "mrss.sav")[0].site) == {"BXP"}
    assert [file["name"] for file in record.files][:-1] == [f["name"] for f in manifest["files"]]


def test_shortened_names_are_unique_stable_and_fit():
    names = [
        "sae_hospitalisation",
        "sae_death",
        "lupus_nephritis_class_2_or_5",
        "lupus_nephritis_class_3_or_4",
        "lupus_ne",
        "face",
        "serious_aware_at",
        "in",
    ]
    short = unique_names(names, 8, reserved=["in"])
    assert all(len(name) <= 8 for name in short.values())
    assert len({name.casefold() for name in short.values()}) == len(names)
    assert short["face"] == "face" and short["sae_death"] == "sae_deat"
    assert short["sae_hospitalisation"] == "sae_hosp"
    assert short["lupus_ne"] == "lupus_ne"  # a name that fits keeps it
    assert short["lupus_nephritis_class_2_or_5"] == "lupus_01"
    assert short["lupus_nephritis_class_3_or_4"] == "lupus_02"
    assert short["in"] == "in01"
    assert unique_names(list(reversed(names)), 8, reserved=["in"]) == short


def test_the_progress_counts_every_row_of_every_format(rct, tmp_path):
    heard = []
    export_run(
        study=rct,
        formats=["xlsx", *STATS],
        by=user("datamanager"),
        forms=["mrss", "adverse_event"],
        out_dir=tmp_path,
        on_progress=lambda written, total: heard.append((written, total)),
    )
    rows = len(database_rows(rct, "mrss")[1]) + len(database_rows(rct, "adverse_event")[1])
    assert heard[-1] == (4 * rows, 4 * rows)
    assert [written for written, _total in heard] == sorted(written for written, _ in heard)
