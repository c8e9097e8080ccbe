"""The CSV writer's fast path: columns converted by their field write exactly what cell()
writes for every value of the seeded studies; a failure while reading or writing stops the
export with its error."""

from __future__ import annotations

import csv
import io

import pytest

from ecrf.exports.services import _datasets, export_prepare
from ecrf.exports.writers.csv_writer import _row_converter, cell, converter, write_csv
from ecrf.studies.models import Study
from tests.exports.test_csv_export import COHORT, RCT, user


def _line(values) -> str:
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerow(values)
    return text.getvalue()


def test_each_column_is_written_as_cell_writes_it(seeded):
    compared = set()
    for code in (RCT, COHORT):
        study = Study.objects.get(code=code)
        request = export_prepare(study=study, by=user("admin"), unblinded=True)
        for dataset in _datasets(request):
            convert = _row_converter([converter(column) for column in dataset.columns])
            for row in dataset.rows():
                assert _line(convert(row)) == _line([cell(v) for v in row]), dataset.code
                compared |= {type(value) for value in row}
    # Every kind of value the forms hold went through it.
    assert {"bool", "Decimal", "date", "datetime", "float", "int", "str", "NoneType"} <= {
        kind.__name__ for kind in compared
    }


def test_a_failure_while_reading_stops_the_file_with_its_error(tmp_path):
    def rows():
        yield ("BXP-001", 1)
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="went away"):
        write_csv(tmp_path / "form.csv", ["subject_code", "n"], rows(), converters=[None, None])


def test_a_failure_while_writing_stops_the_export_with_its_error(tmp_path):
    def broken(value):
        raise ValueError(f"cannot write {value}")

    rows = ((n, n) for n in range(5000))
    with pytest.raises(ValueError, match="cannot write 0"):
        write_csv(tmp_path / "form.csv", ["a", "b"], rows, converters=[None, broken])
