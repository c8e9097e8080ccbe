"""A cut-off on the seeded demo: the plain export at or after its writes, nothing before
them; the command's --as-of; refusals write nothing; the queries do not grow with the rows.

The demo is seeded in one transaction (conftest.py), and the audit events are stamped
with the start of the transaction that writes them: every seeded row, and every change a
test makes, bears that one instant. What changes between two instants is tested in
tests/exports_as_of/, where each write commits on its own.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from ecrf.crfs.models import Mrss
from ecrf.crfs.services import crf_save
from ecrf.exports.models import ExportRecord
from ecrf.exports.services import export_run
from ecrf.studies.models import Study
from tests.exports.test_csv_export import files, read
from tests.exports_as_of.history import database_clock, keep_up_with_the_database

RCT = "NCT00479934"
INSTANT = timedelta(microseconds=1)


def user(username):
    return get_user_model().objects.get(username=username)


def manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture
def rct(seeded, fixed_clock):
    keep_up_with_the_database(fixed_clock)
    return Study.objects.get(code=RCT)


@pytest.fixture
def seeded_at(rct):
    """The instant every seeded event bears: the seeding transaction's start."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        instant = cursor.fetchone()[0]
    stamps = Mrss.pgh_event_models["insert"].objects.values_list("pgh_created_at", flat=True)
    assert set(stamps) == {instant}
    return instant


def test_at_or_after_the_last_write_the_export_is_the_plain_one(rct, seeded_at, tmp_path):
    admin = user("admin")
    export_run(study=rct, by=admin, unblinded=True, out_dir=tmp_path / "plain")
    plain = manifest(tmp_path / "plain")
    assert {"csv/adverse_event.csv", "csv/allocation.csv"} <= {f["name"] for f in plain["files"]}
    for name, cut_off in (("seeded", seeded_at), ("clock", database_clock())):
        record = export_run(
            study=rct, by=admin, unblinded=True, as_of=cut_off, out_dir=tmp_path / name
        )
        written = manifest(tmp_path / name)
        # Every file, its rows and its SHA-256, as the plain export wrote it.
        assert written["files"] == plain["files"], name
        assert written["cut_off"] == cut_off.isoformat()
        assert plain["cut_off"] == plain["exported_at"]
        assert record.as_of == cut_off


def test_before_the_first_write_every_dataset_is_empty(rct, seeded_at, tmp_path):
    admin = user("admin")
    export_run(study=rct, by=admin, unblinded=True, out_dir=tmp_path / "plain")
    before = seeded_at - INSTANT
    export_run(study=rct, by=admin, unblinded=True, as_of=before, out_dir=tmp_path / "before")
    written = manifest(tmp_path / "before")
    assert written["cut_off"] == before.isoformat()
    assert [f["name"] for f in written["files"]] == [
        f["name"] for f in manifest(tmp_path / "plain")["files"]
    ]
    for file in written["files"]:
        if file["name"] == "csv/dictionary.csv":
            # The forms are described whatever they held.
            plain = (tmp_path / "plain" / file["name"]).read_bytes()
            assert (tmp_path / "before" / file["name"]).read_bytes() == plain
            continue
        # The columns, and no row: no patient, visit, form, event or slot was taken yet.
        assert file["rows"] == 0, file["name"]
        frame = read(tmp_path / "before" / file["name"])
        assert len(frame) == 0
        assert list(frame.columns) == list(read(tmp_path / "plain" / file["name"]).columns)


def test_writes_of_one_instant_read_as_the_last_of_them(rct, seeded_at, tmp_path):
    """A test's change bears the seeding's instant too: the later write (the higher event
    number) is the row at that instant."""
    mrss = Mrss.objects.filter(patient__study=rct, patient__site__code="STR").first()
    face = (mrss.face + 1) % 4
    crf_save(
        visit=mrss.visit,
        form_code="mrss",
        values={"face": face},
        by=user("investigator.strasbourg"),
        expected_version=mrss.version,
        reason="Re-read on the examination sheet",
    )
    export_run(study=rct, by=user("datamanager"), forms=["mrss"], as_of=seeded_at, out_dir=tmp_path)
    frame = read(tmp_path / "csv" / "mrss.csv")
    row = frame[
        (frame.subject_code == mrss.patient.subject_code) & (frame.visit_code == mrss.visit.code)
    ]
    assert list(row["face"]) == [str(face)]


def test_the_command_takes_a_cut_off(rct, seeded_at, tmp_path):
    def export(cut_off, out):
        output = StringIO()
        with translation.override("en"):
            call_command(
                "export",
                *("--study", RCT, "--user", "datamanager", "--form", "mrss"),
                *("--as-of", cut_off.isoformat(), "--out", str(out)),
                stdout=output,
            )
        return output.getvalue()

    rows = Mrss.objects.filter(patient__study=rct).count()
    assert f"  csv/mrss.csv: {rows} rows" in export(seeded_at, tmp_path / "seeded")
    assert manifest(tmp_path / "seeded")["cut_off"] == seeded_at.isoformat()
    assert "  csv/mrss.csv: 0 rows" in export(seeded_at - INSTANT, tmp_path / "before")
    assert [record.as_of for record in ExportRecord.objects.order_by("pk")] == [
        seeded_at,
        seeded_at - INSTANT,
    ]


REFUSALS = [
    (lambda now: now + timedelta(days=1), "is in the future; give an instant before now."),
    (
        lambda now: now.replace(tzinfo=None) - timedelta(days=1),
        "Cut-off: give a date and time with its time zone (ISO 8601).",
    ),
    (
        lambda now: date(2026, 11, 1),
        "Cut-off: give a date and time with its time zone (ISO 8601).",
    ),
]


@pytest.mark.parametrize(("cut_off", "message"), REFUSALS)
def test_a_cut_off_in_the_future_or_without_its_time_zone_is_refused(
    rct, tmp_path, cut_off, message
):
    out = tmp_path / "out"
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        export_run(study=rct, by=user("datamanager"), as_of=cut_off(timezone.now()), out_dir=out)
    assert list(refused.value.message_dict) == ["as_of"]
    assert message in refused.value.message_dict["as_of"][0]
    assert not out.exists()
    assert not ExportRecord.objects.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2999-01-01T00:00:00+00:00", "Cut-off: 2999-01-01T00:00:00+00:00 is in the future"),
        ("2026-11-01T00:00:00", "Cut-off: give a date and time with its time zone"),
    ],
)
def test_the_command_refuses_such_a_cut_off_and_writes_nothing(rct, tmp_path, text, message):
    out = tmp_path / "out"
    with translation.override("en"), pytest.raises(CommandError) as refused:
        call_command(
            "export",
            *("--study", RCT, "--user", "datamanager", "--as-of", text, "--out", str(out)),
            stdout=StringIO(),
        )
    assert message in str(refused.value)
    assert not out.exists()
    assert not ExportRecord.objects.exists()


def test_the_queries_of_an_export_as_of_do_not_grow_with_the_rows(rct, seeded_at, tmp_path):
    """One count and one server-side cursor per dataset, read from the history whatever
    its rows: Bordeaux's six patients cost the queries Strasbourg's two do."""
    counts, rows = {}, {}
    for site in ("BXP", "STR"):
        with CaptureQueriesContext(connection) as queries:
            record = export_run(
                study=rct,
                by=user("admin"),
                sites=[site],
                unblinded=True,
                as_of=seeded_at,
                out_dir=tmp_path / site,
            )
        counts[site] = len(queries)
        rows[site] = sum(file.get("rows", 0) for file in record.files)
        for path in files(tmp_path / site / "csv"):
            if path.name != "dictionary.csv":
                assert set(read(path)["site"]) <= {site}, path.name
    assert rows["BXP"] > rows["STR"] > 0
    assert counts["BXP"] == counts["STR"]
