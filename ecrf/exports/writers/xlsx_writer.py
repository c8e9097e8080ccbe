"""`xlsx`: the export as one workbook, `xlsx/<STUDY>.xlsx`, a sheet per dataset, then the
`dictionary` sheet (dictionary.csv's columns) and the `sheets` sheet (which sheet holds
which dataset, its labels and rows).

Written with XlsxWriter in constant-memory mode: each row goes to disk as the dataset
streams, so memory stays flat whatever the rows. Cells are typed: numbers as numbers
(integers, floats; a decimal as its float, shown with the field's decimal places so that
the text reads as the database holds it: every decimal here has at most 15 digits, which a
float keeps exactly), yes/no as 1/0, coded answers as their codes (a number for integer
codes, text otherwise), dates as Excel dates (yyyy-mm-dd), date-times in UTC
(yyyy-mm-dd hh:mm:ss; Excel has no time zones), the AE log's partial onset (`YYYY-MM`) as
its text, an empty cell for a missing value. Text is always written as text, never read
as a formula. A sheet's name is the dataset's code, cut to Excel's 31 characters when
longer (the `sheets` sheet names the dataset); a dataset longer than an Excel sheet goes on
in continuation sheets, listed there too.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import xlsxwriter

from ecrf.exports.dictionary import DICTIONARY_COLUMNS, dictionary_row
from ecrf.exports.writers import Writer
from ecrf.exports.writers.stats import unique_names

SHEET_NAME = 31
# Rows of a sheet, its header included (Excel's limit).
SHEET_ROWS = 1_048_576
DICTIONARY, SHEETS = "dictionary", "sheets"
# Excel refuses this one as a sheet's name.
RESERVED = ("History", DICTIONARY, SHEETS)
SHEETS_COLUMNS = ("sheet", "dataset", "label_en", "label_fr", "rows")
# Dates before 1900 are not dates to Excel: written as ISO text.
EXCEL_EPOCH = date(1900, 1, 1)


class Cells:
    """The workbook's formats and the one way a value becomes a cell."""

    def __init__(self, workbook):
        self.workbook = workbook
        self.header = workbook.add_format({"bold": True})
        self.date = workbook.add_format({"num_format": "yyyy-mm-dd"})
        self.datetime = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self._decimals: dict[int, object] = {}

    def decimal(self, places: int):
        if places not in self._decimals:
            pattern = "0." + "0" * places if places else "0"
            self._decimals[places] = self.workbook.add_format({"num_format": pattern})
        return self._decimals[places]

    def writer_of(self, variable):
        """A function (sheet, row, column, value) writing a value of `variable`."""
        field = variable.field
        places = getattr(field, "decimal_places", None) if variable.type == "decimal" else None
        number_format = self.decimal(places) if places is not None else None

        def write(sheet, row, col, value):
            if value is None or value == "":
                return
            if isinstance(value, bool):
                sheet.write_number(row, col, int(value))
            elif isinstance(value, (int, float, Decimal)):
                sheet.write_number(row, col, float(value), number_format)
            elif isinstance(value, datetime):
                moment = value.astimezone(UTC).replace(tzinfo=None)
                if moment.date() < EXCEL_EPOCH:
                    sheet.write_string(row, col, moment.isoformat())
                else:
                    sheet.write_datetime(row, col, moment, self.datetime)
            elif isinstance(value, date):
                if value < EXCEL_EPOCH:
                    sheet.write_string(row, col, value.isoformat())
                else:
                    sheet.write_datetime(row, col, value, self.date)
            elif isinstance(value, (dict, list)):
                sheet.write_string(row, col, json.dumps(value, ensure_ascii=False))
            else:
                sheet.write_string(row, col, str(value))

        return write


def _start_sheet(workbook, cells, name: str, header) -> object:
    sheet = workbook.add_worksheet(name)
    for col, title in enumerate(header):
        sheet.write_string(0, col, title, cells.header)
        sheet.set_column(col, col, max(10, min(len(title) + 2, 40)))
    sheet.freeze_panes(1, 0)
    return sheet


def sheet_names(codes: list[str]) -> dict[str, str]:
    """Each dataset code -> its sheet's name: within Excel's 31 characters, unique (Excel
    ignores case), never one of the workbook's own sheets."""
    return unique_names(codes, SHEET_NAME, reserved=RESERVED)


def _write_dataset(workbook, cells, dataset, name: str, taken: set[str], tick) -> list:
    """The dataset's rows into its sheet (and continuation sheets past Excel's rows, should
    it have that many); the `sheets` rows: (sheet, dataset, labels, rows)."""
    header = [column.name for column in dataset.columns]
    writers = [cells.writer_of(column) for column in dataset.columns]
    sheets, part = [], 1
    sheet, row = _start_sheet(workbook, cells, name, header), 0
    for values in dataset.rows():
        if row == SHEET_ROWS - 1:
            sheets.append([name, dataset.code, dataset.label_en, dataset.label_fr, row])
            part += 1
            name = _continuation(dataset.code, part, taken)
            sheet, row = _start_sheet(workbook, cells, name, header), 0
        row += 1
        for col, (write_cell, value) in enumerate(zip(writers, values, strict=True)):
            write_cell(sheet, row, col, value)
        tick()
    sheets.append([name, dataset.code, dataset.label_en, dataset.label_fr, row])
    return sheets


def write(context) -> list[dict]:
    folder = context.folder("xlsx")
    path = folder / f"{context.study.code}.xlsx"
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    cells = Cells(workbook)
    names = sheet_names([dataset.code for dataset in context.datasets])
    taken = set(names.values())
    listed = []  # the `sheets` sheet's rows
    for dataset in context.datasets:
        listed += _write_dataset(workbook, cells, dataset, names[dataset.code], taken, context.tick)
    sheet = _start_sheet(workbook, cells, DICTIONARY, DICTIONARY_COLUMNS)
    dictionary_rows = 0
    for dictionary_rows, variable in enumerate(context.dictionary, start=1):
        for col, value in enumerate(dictionary_row(variable)):
            if value:
                sheet.write_string(dictionary_rows, col, value)
    sheet = _start_sheet(workbook, cells, SHEETS, SHEETS_COLUMNS)
    for row, values in enumerate(listed, start=1):
        for col, value in enumerate(values):
            if isinstance(value, int):
                sheet.write_number(row, col, value)
            else:
                sheet.write_string(row, col, value)
    workbook.close()
    entry = context.entry(path, sum(values[4] for values in listed))
    entry["sheets"] = {
        **{values[0]: values[4] for values in listed},
        DICTIONARY: dictionary_rows,
        SHEETS: len(listed),
    }
    return [entry]


def _continuation(code: str, part: int, taken: set[str]) -> str:
    suffix = f"~{part}"
    name = code[: SHEET_NAME - len(suffix)] + suffix
    while name.casefold() in {existing.casefold() for existing in taken}:
        suffix += "~"
        name = code[: SHEET_NAME - len(suffix)] + suffix
    taken.add(name)
    return name


WRITERS = {"xlsx": Writer(write=write)}
