"""The CSV writer: the records PostgreSQL formats (sql_text.py) are exactly what the csv
module writes from cell() of the rows the other writers read, for every value of the
seeded studies (a JSON answer as JSON); a failure while reading or writing stops the
export with its error."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import models

from ecrf.exports.services import _datasets, export_prepare
from ecrf.exports.writers.csv_writer import cell, write_csv, write_dataset
from ecrf.studies.models import Study
from tests.exports.test_csv_export import COHORT, RCT, user


def _line(values) -> str:
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerow(values)
    return text.getvalue()


def test_each_record_is_what_the_csv_module_writes_of_cell(seeded, tmp_path):
    compared = set()
    for code in (RCT, COHORT):
        study = Study.objects.get(code=code)
        request = export_prepare(study=study, by=user("admin"), unblinded=True)
        for dataset in _datasets(request):
            path = tmp_path / f"{code}-{dataset.code}.csv"
            written = write_dataset(path, dataset)
            with path.open(encoding="utf-8", newline="") as file:
                header, *records = csv.reader(file)
            assert path.read_bytes().count(b"\r\n") >= written + 1
            assert header == [column.name for column in dataset.columns]
            rows = list(dataset.rows())
            assert len(records) == len(rows) == written, dataset.code
            json_columns = {
                i
                for i, column in enumerate(dataset.columns)
                if isinstance(column.field, models.JSONField)
            }
            for record, row in zip(records, rows, strict=True):
                expected = [cell(v) for i, v in enumerate(row) if i not in json_columns]
                found = [v for i, v in enumerate(record) if i not in json_columns]
                assert found == expected, dataset.code
                for i in json_columns:
                    assert (json.loads(record[i]) if record[i] else None) == row[i]
                compared |= {type(value) for value in row}
    # Every kind of value the forms hold went through it.
    assert {"bool", "Decimal", "date", "datetime", "float", "int", "str", "NoneType"} <= {
        kind.__name__ for kind in compared
    }


def test_a_text_with_commas_quotes_and_line_breaks_is_quoted_as_rfc_4180_wants(seeded, tmp_path):
    from ecrf.safety.models import AdverseEvent

    event = AdverseEvent.objects.filter(patient__study__code=RCT).order_by("pk").first()
    verbatim = 'Nausées, "fortes"\r\nle soir'
    AdverseEvent.objects.filter(pk=event.pk).update(term=verbatim)
    request = export_prepare(study=Study.objects.get(code=RCT), by=user("admin"))
    dataset = next(d for d in _datasets(request) if d.code == "adverse_event")
    write_dataset(tmp_path / "ae.csv", dataset)
    with (tmp_path / "ae.csv").open(encoding="utf-8", newline="") as file:
        records = list(csv.DictReader(file))
    assert verbatim in [record["term"] for record in records]
    quoted = _line([verbatim]).removesuffix("\r\n")
    assert quoted == '"Nausées, ""fortes""\r\nle soir"'
    assert f",{quoted},".encode() in (tmp_path / "ae.csv").read_bytes()


def test_a_failure_while_reading_stops_the_file_with_its_error(tmp_path):
    def rows():
        yield ("BXP-001", 1)
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="went away"):
        write_csv(tmp_path / "form.csv", ["subject_code", "n"], rows())


def test_a_failure_while_writing_stops_the_export_with_its_error(tmp_path):
    class Unwritable:
        def __str__(self):
            raise ValueError("cannot write this value")

    rows = ((n, Unwritable() if n == 1500 else n) for n in range(5000))
    with pytest.raises(ValueError, match="cannot write this value"):
        write_csv(tmp_path / "form.csv", ["a", "b"], rows)


def test_record_ends_become_crlf_outside_quotes_only_across_blocks():
    from ecrf.exports.sql_text import CrlfRecords

    stream = b'a,1\n"x\ny",2\n"say ""hi""\n",3\nb,4\n'
    expected = b'a,1\r\n"x\ny",2\r\n"say ""hi""\n",3\r\nb,4\r\n'
    for size in (1, 2, 3, 5, 7, len(stream)):
        records = CrlfRecords()
        blocks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert b"".join(records(block) for block in blocks) == expected, size
        assert records.records == 4
