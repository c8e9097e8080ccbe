"""The Excel export of the seeded studies, read back with openpyxl and compared with the
database: typed cells, the dictionary sheet, blinding, the manifest."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import openpyxl
import pandas
import pytest
from django.contrib.auth import get_user_model

from ecrf.crfs.models import FORM_MODELS, MdmCytokines
from ecrf.exports.dictionary import KEY_COLUMNS, export_fields
from ecrf.exports.services import export_run
from ecrf.exports.writers import xlsx_writer
from ecrf.patients.models import Allocation, Patient
from ecrf.safety.models import AdverseEvent
from ecrf.studies.models import Study

RCT, COHORT = "NCT00479934", "NCT04206644"
NAUSEA = "Nausées après les prises, sensation de réplétion gastrique"


def user(username):
    return get_user_model().objects.get(username=username)


@pytest.fixture
def rct(seeded):
    return Study.objects.get(code=RCT)


@pytest.fixture
def cohort(seeded):
    return Study.objects.get(code=COHORT)


def database_rows(study, code) -> tuple[list[str], list[list]]:
    """A dataset's columns and rows as the database holds them, read without the export's
    code: the header and the raw values."""
    if code == "adverse_event":
        model, keys = AdverseEvent, ["subject_code", "site"]
        instances = (
            AdverseEvent.objects.filter(patient__study=study)
            .select_related("patient__site")
            .order_by("patient__subject_code", "number")
        )
    else:
        model, keys = FORM_MODELS[code], list(KEY_COLUMNS)
        instances = (
            model.objects.filter(patient__study=study)
            .select_related("patient__site", "visit")
            .order_by("patient__subject_code", "visit__sequence", "visit__repeat", "pk")
        )
    fields = export_fields(model)
    rows = []
    for instance in instances:
        row = [instance.patient.subject_code, instance.patient.site.code]
        if code != "adverse_event":
            visit = instance.visit
            row += [visit.code if visit else None, visit.visit_date if visit else None]
            row.append(instance.status)
        for field in fields:
            value = getattr(instance, field.attname)
            if field.is_relation and value is not None:
                value = Patient.objects.get(pk=value).subject_code
            row.append(value)
        rows.append(row)
    return [*keys, *(field.name for field in fields)], rows


def same_cell(cell, value) -> bool:
    """A cell as Excel holds it against the database's value."""
    if value is None or value == "":
        return cell is None
    if isinstance(value, bool):
        return cell == int(value) and isinstance(cell, int)
    if isinstance(value, Decimal):
        return isinstance(cell, (int, float)) and Decimal(repr(float(cell))) == value
    if isinstance(value, (int, float)):
        return isinstance(cell, (int, float)) and float(cell) == float(value)
    if isinstance(value, datetime):  # in UTC, to Excel's millisecond
        moment = value.astimezone(UTC).replace(tzinfo=None)
        return isinstance(cell, datetime) and abs(cell - moment) < timedelta(milliseconds=1)
    if isinstance(value, date):
        return (
            isinstance(cell, datetime)
            and cell.date() == value
            and cell.time() == datetime.min.time()
        )
    if isinstance(value, dict):
        return json.loads(cell) == value
    return cell == str(value)


# XlsxWriter's constant-memory mode writes inline strings, escaping a literal "_x10e9_"
# (the unit in "neutrophils_x10e9_l") as "_x005F_x10e9_" as the Office Open XML standard
# asks, so that Excel does not read it as a character; openpyxl decodes that escape in
# shared strings only, so the tests decode it as Excel does.
OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def text_of(cell):
    if isinstance(cell, str):
        return OOXML_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), cell)
    return cell


def sheet_rows(workbook, name) -> tuple[list, list[list]]:
    rows = [[text_of(cell) for cell in row] for row in workbook[name].iter_rows(values_only=True)]
    return rows[0], rows[1:]


def export(study, tmp_path, **asked):
    asked.setdefault("by", user("datamanager"))
    record = export_run(
        study=study, formats=asked.pop("formats", ["xlsx"]), out_dir=tmp_path, **asked
    )
    path = tmp_path / "xlsx" / f"{study.code}.xlsx"
    return record, path, openpyxl.load_workbook(path, read_only=True)


def _compare(study, workbook) -> int:
    compared = 0
    manifest_forms = [name for name in workbook.sheetnames if name not in ("dictionary", "sheets")]
    for code in manifest_forms:
        header, rows = sheet_rows(workbook, code)
        expected_header, expected_rows = database_rows(study, code)
        assert header == expected_header, code
        assert len(rows) == len(expected_rows), code
        for row, expected in zip(rows, expected_rows, strict=True):
            for name, cell, value in zip(header, row, expected, strict=True):
                assert same_cell(cell, value), (code, name, cell, value)
            compared += 1
    return compared


def test_the_trial_workbook_reads_back_as_the_database_holds_it(rct, tmp_path):
    record, path, workbook = export(rct, tmp_path)
    forms = json.loads((tmp_path / "manifest.json").read_text())["forms"]
    assert workbook.sheetnames == [*forms, "dictionary", "sheets"]
    assert _compare(rct, workbook) > 100
    # The derived score is a number, as stored.
    header, rows = sheet_rows(workbook, "mrss")
    totals = [row[header.index("total")] for row in rows]
    assert all(isinstance(total, int) for total in totals)
    assert totals == [row[header.index("total")] for row in database_rows(rct, "mrss")[1]]
    # A missing answer is an empty cell, never "None" or "nan".
    cells = [cell for name in forms for row in sheet_rows(workbook, name)[1] for cell in row]
    assert None in cells
    assert not {"None", "nan", "NaN"} & {cell for cell in cells if isinstance(cell, str)}
    assert record.blinded


def test_cells_are_typed_and_the_header_bold_and_frozen(rct, tmp_path):
    _record, path, _workbook = export(rct, tmp_path, forms=["mrss", "safety_labs", "adverse_event"])
    workbook = openpyxl.load_workbook(path)  # not read-only: formats and panes
    mrss = workbook["mrss"]
    assert mrss.freeze_panes == "A2"
    assert all(cell.font.bold for cell in mrss[1])
    header = [cell.value for cell in mrss[1]]
    visit_date = mrss.cell(row=2, column=header.index("visit_date") + 1)
    assert visit_date.is_date and visit_date.number_format == "yyyy-mm-dd"
    labs = workbook["safety_labs"]
    header = [text_of(cell.value) for cell in labs[1]]
    decimals = [
        (name, field.decimal_places)
        for name, field in ((f.name, f) for f in export_fields(FORM_MODELS["safety_labs"]))
        if field.get_internal_type() == "DecimalField"
    ]
    assert decimals
    shown = 0
    for name, places in decimals:
        for row in labs.iter_rows(min_row=2):
            cell = row[header.index(name)]
            if cell.value is not None:
                assert cell.data_type == "n"
                assert cell.number_format == ("0." + "0" * places if places else "0")
                shown += 1
    assert shown
    log = workbook["adverse_event"]
    header = [cell.value for cell in log[1]]
    nausea = next(
        row for row in log.iter_rows(min_row=2) if row[header.index("term")].value == NAUSEA
    )
    onset = nausea[header.index("onset_date")]
    assert onset.data_type == "s" and re.fullmatch(r"\d{4}-\d{2}", onset.value)
    event = AdverseEvent.objects.get(term=NAUSEA)
    assert onset.value == event.onset_date
    assert nausea[header.index("serious")].value == 0
    assert nausea[header.index("relatedness")].value == event.relatedness == "probable"
    assert nausea[header.index("end_date")].value is None
    aware = nausea[header.index("aware_at")]
    if event.aware_at is not None:
        assert same_cell(aware.value, event.aware_at)
        assert aware.number_format == "yyyy-mm-dd hh:mm:ss"
    assert nausea[header.index("ctcae_grade")].data_type == "n"


def test_the_cohort_keeps_its_repeated_cultures(cohort, tmp_path):
    _record, _path, workbook = export(cohort, tmp_path)
    assert _compare(cohort, workbook) > 10
    header, rows = sheet_rows(workbook, "mdm_cytokines")
    frame = pandas.DataFrame(rows, columns=header)
    assert frame.groupby(["subject_code", "visit_code"])["condition"].nunique().max() > 1
    assert len(frame) == MdmCytokines.objects.filter(patient__study=cohort).count()


def test_the_dictionary_sheet_is_dictionary_csv(rct, tmp_path):
    _record, _path, workbook = export(rct, tmp_path, formats=["csv", "xlsx"])
    header, rows = sheet_rows(workbook, "dictionary")
    csv = pandas.read_csv(tmp_path / "csv" / "dictionary.csv", dtype=str, keep_default_na=False)
    assert header == list(csv.columns)
    assert [[cell or "" for cell in row] for row in rows] == csv.values.tolist()
    header, rows = sheet_rows(workbook, "sheets")
    assert header == ["sheet", "dataset", "label_en", "label_fr", "rows"]
    assert [row[0] for row in rows] == [row[1] for row in rows]  # no name had to be cut
    mrss = next(row for row in rows if row[1] == "mrss")
    assert mrss[4] == len(sheet_rows(workbook, "mrss")[1])


def test_a_blinded_workbook_names_no_arm_anywhere(rct, tmp_path):
    _record, path, workbook = export(rct, tmp_path, by=user("admin"))
    assert Allocation.objects.filter(study=rct, patient__isnull=False).exists()
    assert "allocation" not in workbook.sheetnames
    arms = rct.current_protocol.protocol.arms
    words = [arm.code for arm in arms] + [arm.label_en for arm in arms]
    words += [arm.label_fr for arm in arms if arm.label_fr]
    pattern = re.compile("|".join(rf"\b{re.escape(word)}\b" for word in words), re.IGNORECASE)
    for name in workbook.sheetnames:
        for row in workbook[name].iter_rows(values_only=True):
            for cell in row:
                assert not (isinstance(cell, str) and pattern.search(cell)), (name, cell)
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            assert not pattern.search(archive.read(member).decode("utf-8")), member


def test_an_unblinded_workbook_has_the_allocation_sheet(rct, tmp_path):
    _record, _path, workbook = export(rct, tmp_path, by=user("admin"), unblinded=True)
    header, rows = sheet_rows(workbook, "allocation")
    assert header == ["subject_code", "site", "kit_number", "arm"]
    stored = list(
        Allocation.objects.filter(study=rct, patient__isnull=False)
        .order_by("patient__subject_code")
        .values_list("patient__subject_code", "site__code", "kit_number", "arm")
    )
    assert [tuple(row) for row in rows] == stored


def test_the_manifest_lists_the_workbook_with_its_rows_and_checksum(rct, tmp_path):
    record, path, workbook = export(rct, tmp_path, sites=["BXP"])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    [entry] = manifest["files"]
    assert entry["name"] == f"xlsx/{RCT}.xlsx"
    assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    counts = {name: len(sheet_rows(workbook, name)[1]) for name in workbook.sheetnames}
    assert entry["sheets"] == counts
    assert entry["rows"] == sum(
        n for name, n in counts.items() if name not in ("dictionary", "sheets")
    )
    assert {row[1] for row in sheet_rows(workbook, "mrss")[1]} == {"BXP"}
    assert record.files[0]["sha256"] == entry["sha256"]


def test_a_dataset_longer_than_a_sheet_goes_on_in_continuation_sheets(rct, tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx_writer, "SHEET_ROWS", 4)  # a header and three rows a sheet
    _record, _path, workbook = export(rct, tmp_path, forms=["mrss"])
    names = [name for name in workbook.sheetnames if name.startswith("mrss")]
    _header, expected = database_rows(rct, "mrss")
    assert len(names) == -(-len(expected) // 3) > 1
    assert names[:3] == ["mrss", "mrss~2", "mrss~3"]
    rows = [row for name in names for row in sheet_rows(workbook, name)[1]]
    assert [row[0] for row in rows] == [row[0] for row in expected]
    listed = sheet_rows(workbook, "sheets")[1]
    assert [row[0] for row in listed] == names and {row[1] for row in listed} == {"mrss"}


def test_sheet_names_fit_excel_and_never_clash():
    codes = ["a" * 40, "a" * 35, "dictionary", "mrss", "History", "b" * 31]
    names = xlsx_writer.sheet_names(codes)
    assert all(len(name) <= 31 for name in names.values())
    assert len({name.casefold() for name in names.values()}) == len(codes)
    assert {"dictionary", "sheets", "history"}.isdisjoint(n.casefold() for n in names.values())
    assert names["mrss"] == "mrss" and names["b" * 31] == "b" * 31
    assert xlsx_writer.sheet_names(list(reversed(codes))) == names
