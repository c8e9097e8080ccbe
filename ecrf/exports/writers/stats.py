"""`sas`, `stata`, `spss`: one file per dataset for the statisticians' own tools, through
pyreadstat (no hand-written binary format).

Each dataset is read into a pandas frame on its own (`dataset.rows()`, ticking the progress
per row), written, and freed before the next: memory grows with the largest form, never
with the study. Columns are typed from the dictionary: text (and text-coded answers) as
strings, numbers, yes/no and integer-coded answers as floats (1/0 for yes/no, missing as
the format's missing), dates and date-times (UTC) as the format's date values with a date
format; the AE log's partial onset (`YYYY-MM`) is text and stays text. Labels are English.

- `sas`: SAS transport files version 5 (`sas/<dataset>.xpt`), the version the `LIBNAME
  XPORT` engine of every SAS release reads directly, that regulators accept and that
  `pandas.read_sas` and R read; version 8 would keep long names but needs the
  `%XPT2LOC` macro in SAS and is unreadable by pandas. Version 5 limits names (variables
  and members) to 8 characters, labels to 40 and text to 200 bytes: `sas/names.csv` maps
  every variable to its SAS name and full label, a longer text is split into parts
  (named in names.csv), and `sas/formats.sas` defines the value labels with PROC FORMAT and
  reads each transport file into WORK with its formats, full labels and dictionary names.
- `stata`: `stata/<dataset>.dta` in format 118 (Unicode, long strings; Stata 14 and
  later read it; 119 adds only more than 32,767 variables and needs Stata 15). Stata's
  value labels are for integers: a text-coded answer is written as 1, 2, ... in the order
  of its allowed values, labelled "code: label", and `stata/value_labels.csv` gives the
  mapping; integer codes and yes/no keep their values. Names longer than Stata's 32
  characters (or, for a labelled variable, than leaves room for the number pyreadstat
  appends to its label set's name) are shortened (`stata/names.csv`). Date-times are %tc
  (milliseconds).
- `spss`: `spss/<dataset>.sav`, text codes kept as text with string value labels, numbers
  with value labels on their codes; names up to 64 bytes.

A shortened name keeps the name's beginning when that is unique, else its beginning and a
two-digit number counted in alphabetical order of the full names: the same for the same
dataset, never two alike (case ignored).
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy
import pandas
import pyreadstat

from ecrf.exports.dictionary import Variable
from ecrf.exports.writers import Writer
from ecrf.exports.writers.csv_writer import write_csv

MISSING = float("nan")


# -- names --------------------------------------------------------------------------------


def _cut_name(name: str, limit: int) -> str:
    return name[:limit].rstrip("_") or name[:limit]


def unique_names(
    names: Iterable[str],
    limit: int | Callable[[str], int],
    *,
    reserved: Iterable[str] = (),
) -> dict[str, str]:
    """Each name -> a name of at most `limit` characters (a number, or a function of the
    name), unique among them whatever the case, never a reserved word.

    A name that fits is kept; a longer one keeps its first `limit` characters when no other
    name starts the same; else (or when that is taken) its first `limit - 2` characters and
    a two-digit number, the numbers given in alphabetical order of the full names. The
    result depends only on the set of names, not on their order.
    """
    names = list(dict.fromkeys(names))
    limit_of = limit if callable(limit) else (lambda _name, value=limit: value)
    reserved = {word.casefold() for word in reserved}
    found: dict[str, str] = {}
    taken: set[str] = set(reserved)
    longer = []
    for name in names:
        if len(name) <= limit_of(name) and name.casefold() not in reserved:
            found[name] = name
            taken.add(name.casefold())
        else:
            longer.append(name)
    groups: dict[str, list[str]] = {}
    for name in sorted(longer):
        groups.setdefault(_cut_name(name, limit_of(name)).casefold(), []).append(name)
    numbered = []
    for cut, members in sorted(groups.items()):
        if len(members) == 1 and cut not in taken:
            found[members[0]] = _cut_name(members[0], limit_of(members[0]))
            taken.add(cut)
        else:
            numbered += members
    for name in sorted(numbered):
        number = 1
        while True:
            suffix = f"{number:02d}"
            candidate = name[: limit_of(name) - len(suffix)] + suffix
            if candidate.casefold() not in taken:
                break
            number += 1
        found[name] = candidate
        taken.add(candidate.casefold())
    return {name: found[name] for name in names}


def cut_label(text: str, limit: int, *, in_bytes: bool = False) -> str:
    """A label within the format's limit (characters, or UTF-8 bytes), cut with "..."."""

    def size(value: str) -> int:
        return len(value.encode("utf-8")) if in_bytes else len(value)

    if size(text) <= limit:
        return text
    while size(text + "...") > limit:
        text = text[:-1]
    return text.rstrip() + "..."


# -- reading a dataset into columns -------------------------------------------------------


@dataclass
class Column:
    """One column of a statistics file: a dictionary variable (or a part of a long text)."""

    variable: Variable
    name: str
    label: str
    kind: str  # "text", "number", "date", "datetime"
    values: list = field(default_factory=list, repr=False)
    part: str = ""


def integer_codes(variable: Variable) -> bool:
    codes = variable.codes
    return bool(codes) and all(
        isinstance(code, int) and not isinstance(code, bool) for code, *_ in codes
    )


def kind_of(variable: Variable) -> str:
    if variable.type in ("date", "datetime"):
        return variable.type
    if variable.type in ("integer", "float", "decimal", "boolean"):
        return "number"
    if variable.type == "coded" and integer_codes(variable):
        return "number"
    return "text"


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _number(value) -> float:
    if value is None:
        return MISSING
    return float(value)


@dataclass(frozen=True)
class Clock:
    """How a format counts dates and date-times: from its epoch, in its units."""

    epoch: date
    per_day: float
    per_second: float

    def date(self, value) -> float:
        if value is None:
            return MISSING
        if isinstance(value, datetime):
            value = value.astimezone(UTC).date()
        return (value - self.epoch).days * self.per_day

    def datetime(self, value) -> float:
        if value is None:
            return MISSING
        if timezone_naive(value):
            value = value.replace(tzinfo=UTC)
        start = datetime(self.epoch.year, self.epoch.month, self.epoch.day, tzinfo=UTC)
        return (value.astimezone(UTC) - start).total_seconds() * self.per_second


def timezone_naive(value: datetime) -> bool:
    return value.tzinfo is None or value.tzinfo.utcoffset(value) is None


SAS_CLOCK = Clock(date(1960, 1, 1), 1, 1)
STATA_CLOCK = Clock(date(1960, 1, 1), 1, 1000)  # %td days, %tc milliseconds
SPSS_CLOCK = Clock(date(1582, 10, 14), 86400, 1)  # seconds since the Gregorian calendar


def read_columns(dataset, context, clock: Clock, *, encode=None) -> list[Column]:
    """The dataset's columns with their values, read row by row (one tick per row).

    `encode(variable)` may return a function that turns a text-coded answer into a number
    (Stata's integer codes); the column is then a number.
    """
    columns, converters = [], []
    for variable in dataset.columns:
        kind = kind_of(variable)
        convert = {
            "text": _text,
            "number": _number,
            "date": clock.date,
            "datetime": clock.datetime,
        }[kind]
        encoder = encode(variable) if encode is not None and kind == "text" else None
        if encoder is not None:
            kind, convert = "number", encoder
        column = Column(variable, variable.name, variable.label_en, kind)
        if kind != "text":  # 8 bytes a value rather than a Python float's 32
            column.values = array("d")
        columns.append(column)
        converters.append(convert)
    for row in dataset.rows():
        for column, convert, value in zip(columns, converters, row, strict=True):
            column.values.append(convert(value))
        context.tick()
    return columns


def frame_of(columns: list[Column], names: dict[str, str]) -> pandas.DataFrame:
    """The columns as a frame under their file names; the columns' lists are emptied as
    they are copied, so that the rows are held once."""
    data = {}
    for column in columns:
        if column.kind == "text":
            data[names[column.name]] = pandas.Series(column.values, dtype=object)
        else:
            data[names[column.name]] = pandas.Series(numpy.array(column.values, dtype="float64"))
        column.values = []
    return pandas.DataFrame(data)


def _rows_of(frame: pandas.DataFrame) -> int:
    return len(frame.index)


# -- sas ----------------------------------------------------------------------------------

SAS_NAME = 8
SAS_LABEL = 40  # bytes
SAS_TEXT = 200  # bytes
SAS_LONG_NAME = 32  # what SAS 9 allows, for the WORK datasets formats.sas writes


def _split_utf8(text: str, limit: int) -> list[str]:
    """The text in pieces of at most `limit` UTF-8 bytes, never cutting a character."""
    pieces, current, size = [], [], 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        pieces.append("".join(current))
    return pieces


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def split_long_text(columns: list[Column], limit: int = SAS_TEXT) -> list[Column]:
    """Columns whose text exceeds `limit` bytes become consecutive parts of `limit` bytes
    (the first under the variable's name, the next as `<name>_part2`, ...)."""
    found = []
    for column in columns:
        if column.kind != "text" or max(map(_utf8_size, column.values), default=0) <= limit:
            found.append(column)
            continue
        split = [_split_utf8(value, limit) for value in column.values]
        count = max(len(pieces) for pieces in split)
        for index in range(count):
            found.append(
                Column(
                    column.variable,
                    column.name if index == 0 else f"{column.name}_part{index + 1}",
                    f"{column.label} (part {index + 1} of {count})",
                    "text",
                    [pieces[index] if index < len(pieces) else "" for pieces in split],
                    part=f"{index + 1} of {count}",
                )
            )
    return found


def decimal_places(column: Column) -> tuple[int, int] | None:
    """A decimal's width and places for display (its sign and point included)."""
    field = column.variable.field
    if column.kind != "number" or column.variable.type != "decimal" or field is None:
        return None
    return field.max_digits + 2, field.decimal_places


def _sas_format(column: Column) -> str | None:
    if column.kind == "date":
        return "YYMMDD10"
    if column.kind == "datetime":
        return "E8601DT19"
    if decimal := decimal_places(column):
        width, places = decimal
        return f"{width}.{places}"  # the decimals shown as the database holds them
    return None


def _sas_quote(text: str) -> str:
    # Single quotes: no macro resolution of & and % inside.
    return "'" + str(text).replace("'", "''") + "'"


class SasFormats:
    """The value labels as PROC FORMAT formats, one per distinct list of codes."""

    def __init__(self):
        self.by_codes: dict[tuple, str] = {}
        self.values: dict[str, list[tuple[object, str]]] = {}

    def format_of(self, variable: Variable, sas_name: str) -> str | None:
        codes = variable.codes
        if not codes:
            return None
        text = not integer_codes(variable)
        key = (text, tuple((code, label) for code, label, _fr in codes))
        if key in self.by_codes:
            return self.by_codes[key]
        base = "YESNO" if variable.type == "boolean" else f"{sas_name.upper()}F"
        name, letter = base, ord("B")
        taken = {existing.lstrip("$") for existing in self.values}
        while name in taken:  # a name never ends with a digit: letters, not numbers
            name, letter = f"{base}{chr(letter)}", letter + 1
        name = f"${name}" if text else name
        self.by_codes[key] = name
        self.values[name] = [(code, label) for code, label, _fr in codes]
        return name

    def program(self) -> list[str]:
        if not self.values:
            return []
        lines = ["proc format;"]
        for name, values in self.values.items():
            lines.append(f"  value {name}")
            for code, label in values:
                shown = _sas_quote(code) if name.startswith("$") else str(code)
                lines.append(f"    {shown} = {_sas_quote(label)}")
            lines[-1] += ";"
        lines += ["run;", ""]
        return lines


def write_sas(context) -> list[dict]:
    folder = context.folder("sas")
    codes = [dataset.code for dataset in context.datasets]
    members = {code: name.upper() for code, name in unique_names(codes, SAS_NAME).items()}
    work_names = unique_names(codes, SAS_LONG_NAME)
    files, mapping, steps = [], [], []
    formats = SasFormats()
    for dataset in context.datasets:
        columns = split_long_text(read_columns(dataset, context, SAS_CLOCK))
        long_names = [column.name for column in columns]
        short = {k: v.upper() for k, v in unique_names(long_names, SAS_NAME).items()}
        restored = unique_names(long_names, SAS_LONG_NAME)
        display = {
            short[column.name]: _sas_format(column)
            for column in columns
            if _sas_format(column) is not None
        }
        member = members[dataset.code]
        path = folder / f"{dataset.code}.xpt"
        frame = frame_of(columns, short)
        pyreadstat.write_xport(
            frame,
            path,
            file_label=cut_label(dataset.label_en, SAS_LABEL, in_bytes=True),
            column_labels=[cut_label(column.label, SAS_LABEL, in_bytes=True) for column in columns],
            table_name=member,
            file_format_version=5,
            variable_format=display,
        )
        files.append(context.entry(path, _rows_of(frame)))
        del frame
        step_formats, step_labels, step_renames = [], [], []
        for column in columns:
            sas_name = short[column.name]
            mapping.append(
                [dataset.code, member, column.variable.name, column.part, sas_name, column.label]
            )
            applied = formats.format_of(column.variable, sas_name)
            if applied:
                step_formats.append(f"{sas_name} {applied}.")
            if cut_label(column.label, SAS_LABEL, in_bytes=True) != column.label:
                step_labels.append(f"{sas_name} = {_sas_quote(column.label)}")
            if restored[column.name].casefold() != sas_name.casefold():
                step_renames.append(f"{sas_name} = {restored[column.name]}")
        steps += _data_step(
            path.name, member, work_names[dataset.code], step_formats, step_labels, step_renames
        )
    path = folder / "names.csv"
    rows = write_csv(path, ("dataset", "member", "variable", "part", "sas_name", "label"), mapping)
    files.append(context.entry(path, rows))
    path = folder / "formats.sas"
    path.write_text("\n".join(_sas_program(context, formats, steps)) + "\n", encoding="utf-8")
    files.append(context.entry(path))
    return files


def _statement(keyword: str, items: list[str]) -> list[str]:
    if not items:
        return []
    return [f"  {keyword}", *(f"    {item}" for item in items[:-1]), f"    {items[-1]};"]


def _data_step(file, member, work_name, formats, labels, renames) -> list[str]:
    return [
        f'libname xpt xport "&dir/{file}" access=readonly;',
        f"data work.{work_name};",
        f"  set xpt.{member};",
        *_statement("format", formats),
        *_statement("label", labels),
        *_statement("rename", renames),
        "run;",
        "libname xpt clear;",
        "",
    ]


def _sas_program(context, formats: SasFormats, steps: list[str]) -> list[str]:
    request = context.request
    return [
        f"/* {context.study.code}: value labels (formats) of the {request.blinding.lower()}",
        f"   export of {request.now.astimezone(UTC).isoformat()}.",
        "   Set DIR to the folder holding the transport files (.xpt), then run this program:",
        "   it defines the formats, then reads each transport file (SAS transport version 5)",
        "   into WORK under its dataset name, with its formats, its full labels (version 5",
        "   keeps 40 characters) and the data dictionary's names (see names.csv).",
        "   The text is UTF-8 (French accents): run it in a UTF-8 SAS session. */",
        "%let dir = .;",
        "",
        *formats.program(),
        *steps,
    ]


# -- stata --------------------------------------------------------------------------------

STATA_NAME = 32
STATA_VERSION = 14  # pyreadstat's name for format 118
STATA_LABEL = 80
STATA_RESERVED = frozenset(
    {"_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long"}
    | {"_n", "_N", "_pi", "_pred", "_rc", "_skip", "strL", "using", "with"}
)


@dataclass
class StataCodes:
    """A text-coded variable as integers: 1, 2, ... in the order of its allowed values (a
    code the field no longer offers is numbered after them, labelled with itself)."""

    variable: Variable
    numbers: dict[str, int] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)

    def __post_init__(self):
        for code, label, _fr in self.variable.codes:
            self.add(str(code), f"{code}: {label}")

    def add(self, code: str, label: str) -> int:
        number = len(self.numbers) + 1
        self.numbers[code] = number
        self.labels[number] = label
        return number

    def __call__(self, value) -> float:
        if value is None or value == "":
            return MISSING
        code = str(value)
        number = self.numbers.get(code)
        if number is None:
            number = self.add(code, code)
        return float(number)


def _value_labels(variable: Variable) -> dict:
    return {code: label for code, label, _fr in variable.codes}


def write_stata(context) -> list[dict]:
    folder = context.folder("stata")
    files, mapping, encoded_rows = [], [], []
    shortened = False
    for dataset in context.datasets:
        encoders: dict[str, StataCodes] = {}

        def encode(variable, encoders=encoders):
            if variable.type != "coded":
                return None
            encoders[variable.name] = StataCodes(variable)
            return encoders[variable.name]

        columns = read_columns(dataset, context, STATA_CLOCK, encode=encode)
        labelled = {
            column.name
            for column in columns
            if column.name in encoders or (column.kind == "number" and column.variable.codes)
        }
        # pyreadstat names a value label set after its variable and a counter: the name
        # leaves room for the counter within Stata's 32 characters.
        room = STATA_NAME - len(str(max(len(labelled) - 1, 0)))
        names = unique_names(
            [column.name for column in columns],
            lambda name, room=room, labelled=labelled: room if name in labelled else STATA_NAME,
            reserved=STATA_RESERVED,
        )
        value_labels = {}
        for column in columns:
            if column.name in encoders:
                value_labels[names[column.name]] = encoders[column.name].labels
            elif column.name in labelled:
                value_labels[names[column.name]] = _value_labels(column.variable)
        formats = {
            names[column.name]: "%tdCCYY-NN-DD" if column.kind == "date" else "%tc"
            for column in columns
            if column.kind in ("date", "datetime")
        }
        path = folder / f"{dataset.code}.dta"
        frame = frame_of(columns, names)
        pyreadstat.write_dta(
            frame,
            path,
            file_label=cut_label(dataset.label_en, STATA_LABEL),
            column_labels=[cut_label(column.label, STATA_LABEL) for column in columns],
            version=STATA_VERSION,
            variable_value_labels=value_labels,
            variable_format=formats,
        )
        files.append(context.entry(path, _rows_of(frame)))
        del frame
        for column in columns:
            stata_name = names[column.name]
            shortened = shortened or stata_name != column.name
            mapping.append([dataset.code, column.name, stata_name, column.label])
            if column.name in encoders:
                encoder = encoders[column.name]
                for code, number in encoder.numbers.items():
                    encoded_rows.append(
                        [
                            dataset.code,
                            column.name,
                            stata_name,
                            number,
                            code,
                            encoder.labels[number],
                        ]
                    )
    if encoded_rows:
        path = folder / "value_labels.csv"
        header = ("dataset", "variable", "stata_name", "value", "code", "label")
        files.append(context.entry(path, write_csv(path, header, encoded_rows)))
    if shortened:
        path = folder / "names.csv"
        header = ("dataset", "variable", "stata_name", "label")
        files.append(context.entry(path, write_csv(path, header, mapping)))
    return files


# -- spss ---------------------------------------------------------------------------------

SPSS_NAME = 64
SPSS_LABEL = 256  # bytes
SPSS_RESERVED = frozenset(
    {"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"}
)


def _spss_format(column: Column) -> str | None:
    variable = column.variable
    if column.kind == "date":
        return "SDATE10"
    if column.kind == "datetime":
        return "DATETIME20"
    if column.kind != "number":
        return None
    if decimal := decimal_places(column):
        width, places = decimal
        return f"F{width}.{places}"
    if variable.type == "float":
        return "F10.3"
    return "F8.0"


def write_spss(context) -> list[dict]:
    folder = context.folder("spss")
    files, mapping = [], []
    shortened = False
    for dataset in context.datasets:
        columns = read_columns(dataset, context, SPSS_CLOCK)
        names = unique_names([column.name for column in columns], SPSS_NAME, reserved=SPSS_RESERVED)
        value_labels, formats, measures = {}, {}, {}
        for column in columns:
            name = names[column.name]
            if column.variable.codes:
                value_labels[name] = {
                    (float(code) if column.kind == "number" else str(code)): label
                    for code, label, _fr in column.variable.codes
                }
            spss_format = _spss_format(column)
            if spss_format:
                formats[name] = spss_format
            measures[name] = (
                "nominal" if column.variable.codes or column.kind == "text" else "scale"
            )
        path = folder / f"{dataset.code}.sav"
        frame = frame_of(columns, names)
        pyreadstat.write_sav(
            frame,
            path,
            file_label=cut_label(dataset.label_en, 64, in_bytes=True),
            column_labels=[
                cut_label(column.label, SPSS_LABEL, in_bytes=True) for column in columns
            ],
            variable_value_labels=value_labels,
            variable_format=formats,
            variable_measure=measures,
        )
        files.append(context.entry(path, _rows_of(frame)))
        del frame
        for column in columns:
            shortened = shortened or names[column.name] != column.name
            mapping.append([dataset.code, column.name, names[column.name], column.label])
    if shortened:
        path = folder / "names.csv"
        header = ("dataset", "variable", "spss_name", "label")
        files.append(context.entry(path, write_csv(path, header, mapping)))
    return files


WRITERS = {
    "sas": Writer(write=write_sas),
    "stata": Writer(write=write_stata),
    "spss": Writer(write=write_spss),
}
