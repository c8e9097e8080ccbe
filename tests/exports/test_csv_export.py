"""The CSV export of a seeded study, read back with pandas and compared with the database;
blinding; the manifest and the audit row; every refusal writes nothing."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas
import pghistory.models
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from ecrf.crfs.models import FORM_MODELS, Demographics, MdmCytokines, Mrss
from ecrf.exports.dictionary import KEY_COLUMNS, export_fields
from ecrf.exports.models import ExportRecord
from ecrf.exports.services import FORMATS, PLANNED_FORMATS, export_run
from ecrf.patients.models import Allocation, Patient
from ecrf.studies.models import Study

RCT, COHORT = "NCT00479934", "NCT04206644"


def user(username):
    return get_user_model().objects.get(username=username)


def files(folder):
    return sorted(path for path in folder.rglob("*") if path.is_file())


def read(path) -> pandas.DataFrame:
    return pandas.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def expected(value) -> str:
    """How the export must write a value, said independently of the service's code."""
    if value is None:
        return ""
    if value is True or value is False:
        return str(int(value))
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def same_number_or_text(written: str, value) -> bool:
    if isinstance(value, (dict, list)):
        return json.loads(written) == value  # a JSON answer is written as JSON
    if isinstance(value, (Decimal, float)) and written:
        return Decimal(written) == Decimal(str(value))
    return written == expected(value)


@pytest.fixture
def rct(seeded):
    return Study.objects.get(code=RCT)


@pytest.fixture
def cohort(seeded):
    return Study.objects.get(code=COHORT)


def _compare_with_database(study, folder) -> int:
    """Every exported form's rows equal the database's, value by value; the rows compared."""
    compared = 0
    for name in json.loads((folder / "manifest.json").read_text())["forms"]:
        if name == "adverse_event":
            continue  # not a CRF model: test_the_adverse_event_log_keeps_partial_dates
        model = FORM_MODELS[name]
        frame = read(folder / "csv" / f"{name}.csv")
        fields = export_fields(model)
        assert list(frame.columns) == [*KEY_COLUMNS, *(f.name for f in fields)]
        instances = (
            model.objects.filter(patient__study=study)
            .select_related("patient__site", "visit")
            .order_by("patient__subject_code", "visit__sequence", "visit__repeat", "pk")
        )
        assert len(frame) == len(instances), name
        for (_index, row), crf in zip(frame.iterrows(), instances, strict=True):
            assert row["subject_code"] == crf.patient.subject_code
            assert row["site"] == crf.patient.site.code
            assert row["visit_code"] == (crf.visit.code if crf.visit else "")
            assert row["visit_date"] == expected(crf.visit.visit_date if crf.visit else None)
            assert row["form_status"] == crf.status
            for field in fields:
                value = getattr(crf, field.attname)
                if field.is_relation:
                    value = Patient.objects.get(pk=value).subject_code if value else None
                assert same_number_or_text(row[field.name], value), (name, field.name, value)
            compared += 1
    return compared


def test_the_trial_exported_blinded_reads_back_as_the_database_holds_it(rct, tmp_path):
    Demographics.objects.filter(patient__study=rct).update(initials="QXZ")
    record = export_run(study=rct, by=user("datamanager"), out_dir=tmp_path)
    assert _compare_with_database(rct, tmp_path) > 50
    # A derived score is exported with its answers: the mRSS total as the database has it.
    mrss = read(tmp_path / "csv" / "mrss.csv")
    assert (mrss["total"] != "").all()
    stored = list(
        Mrss.objects.filter(patient__study=rct)
        .order_by("patient__subject_code", "visit__sequence", "visit__repeat", "pk")
        .values_list("total", flat=True)
    )
    assert [int(total) for total in mrss["total"]] == stored
    # A missing answer is an empty cell, never "None" or "nan".
    data = [path for path in files(tmp_path / "csv") if path.name != "dictionary.csv"]
    text = "".join(path.read_text(encoding="utf-8") for path in data)
    assert "None" not in text and "nan" not in text.lower().split(",")
    # The near-identifier is left out.
    assert "initials" not in read(tmp_path / "csv" / "demographics.csv").columns
    assert "QXZ" not in (tmp_path / "csv" / "demographics.csv").read_text(encoding="utf-8")
    assert record.blinded


def test_a_blinded_export_names_no_arm_anywhere(rct, tmp_path):
    export_run(study=rct, by=user("admin"), out_dir=tmp_path)
    arms = rct.current_protocol.protocol.arms
    assert Allocation.objects.filter(study=rct, patient__isnull=False).exists()
    words = [arm.code for arm in arms] + [arm.label_en for arm in arms]
    words += [arm.label_fr for arm in arms if arm.label_fr]
    assert "allocation.csv" not in {path.name for path in files(tmp_path)}
    for path in files(tmp_path):
        content = path.read_text(encoding="utf-8")
        for word in words:
            assert not re.search(rf"\b{re.escape(word)}\b", content, re.IGNORECASE), (path, word)
    # The kits are there: what the blinded see.
    kits = set(read(tmp_path / "csv" / "drug_dispensing.csv")["kit_number"])
    assert kits and kits <= set(Allocation.objects.values_list("kit_number", flat=True))


def test_an_unblinded_export_adds_the_arms_and_says_so(rct, tmp_path):
    record = export_run(study=rct, by=user("admin"), unblinded=True, out_dir=tmp_path)
    allocation = read(tmp_path / "csv" / "allocation.csv")
    stored = dict(
        Allocation.objects.filter(study=rct, patient__isnull=False).values_list(
            "patient__subject_code", "arm"
        )
    )
    assert dict(zip(allocation["subject_code"], allocation["arm"], strict=True)) == stored
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["blinding"] == "UNBLINDED"
    assert not record.blinded


def test_the_cohort_keeps_repeated_cultures_and_french_text(cohort, tmp_path):
    export_run(study=cohort, by=user("datamanager"), out_dir=tmp_path)
    assert _compare_with_database(cohort, tmp_path) > 10
    cultures = read(tmp_path / "csv" / "mdm_cytokines.csv")
    per_visit = cultures.groupby(["subject_code", "visit_code"])["condition"].nunique()
    assert per_visit.max() > 1
    assert len(cultures) == MdmCytokines.objects.filter(patient__study=cohort).count()
    dictionary = read(tmp_path / "csv" / "dictionary.csv")
    row = dictionary[(dictionary.form == "mdm_cytokines") & (dictionary.variable == "condition")]
    assert len(row) == 1
    with translation.override("fr"):
        french = str(MdmCytokines._meta.get_field("condition").verbose_name)
    assert row.iloc[0]["label_fr"].lower() == french.lower()
    assert row.iloc[0]["type"] == "coded"
    assert "=" in row.iloc[0]["allowed_values_en"]
    assert row.iloc[0]["visits"]


def test_the_dictionary_describes_every_exported_column(rct, tmp_path):
    export_run(study=rct, by=user("datamanager"), forms=["mrss", "demographics"], out_dir=tmp_path)
    dictionary = read(tmp_path / "csv" / "dictionary.csv")
    assert set(dictionary.form) == {"mrss", "demographics"}
    for form in ("mrss", "demographics"):
        columns = list(read(tmp_path / "csv" / f"{form}.csv").columns)[len(KEY_COLUMNS) :]
        assert list(dictionary[dictionary.form == form].variable) == columns
    sex = dictionary[dictionary.variable == "sex"].iloc[0]
    assert sex.label_en == "Sex" and sex.label_fr == "Sexe"
    assert sex.type == "coded"
    total = dictionary[(dictionary.form == "mrss") & (dictionary.variable == "total")].iloc[0]
    assert total.type == "integer"
    assert "M12" in total.visits.split()
    # Only the forms asked for are written.
    names = {path.relative_to(tmp_path).as_posix() for path in files(tmp_path)}
    assert names == {"csv/mrss.csv", "csv/demographics.csv", "csv/dictionary.csv", "manifest.json"}


def test_the_manifest_and_the_audit_row(rct, tmp_path):
    diane = user("datamanager")
    record = export_run(study=rct, by=diane, sites=["BXP"], out_dir=tmp_path)
    text = (tmp_path / "manifest.json").read_text(encoding="utf-8")
    manifest = json.loads(text)
    assert manifest["study"] == RCT
    assert manifest["protocol_versions"] == list(
        rct.protocol_versions.values_list("version", flat=True)
    )
    assert manifest["exported_by"] == "datamanager"
    assert manifest["exported_at"] == record.at.astimezone(UTC).isoformat()
    assert manifest["exported_at"].endswith("+00:00")
    assert manifest["blinding"] == "BLINDED"
    assert manifest["sites"] == ["BXP"]
    assert manifest["software_version"] != "unknown"
    for file in manifest["files"]:
        data = (tmp_path / file["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == file["sha256"]
        assert file["rows"] == len(read(tmp_path / file["name"]))
    assert set(read(tmp_path / "csv" / "mrss.csv")["site"]) == {"BXP"}
    record.refresh_from_db()
    assert record.by == diane and record.study == rct and record.blinded
    assert record.sites == ["BXP"] and record.formats == ["csv"]
    assert record.manifest_sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert [f["name"] for f in record.files][-1] == "manifest.json"
    event = pghistory.models.Events.objects.tracks(record).get()
    assert event.pgh_context["user"] == diane.pk
    assert "blinded export of NCT00479934" in event.pgh_context["reason"]


CHOOSE = f"choose {', '.join(FORMATS)}."
# A format still to be built is refused by name (none, once they all are).
NOT_YET = [
    ({"formats": [fmt]}, "formats", f"Format: {fmt} is not supported yet; {CHOOSE}")
    for fmt in PLANNED_FORMATS[:1]
]
REFUSALS = [
    *NOT_YET,
    ({"formats": ["pdf"]}, "formats", f"Format: pdf is not a known format; {CHOOSE}"),
    ({"forms": ["nope"]}, "forms", "Form: nope is not a form this study exports; choose among"),
    ({"sites": ["REN"]}, "sites", "Site: REN does not take part in NCT00479934; choose among"),
    (
        {"as_of": timedelta(days=1)},
        "as_of",
        "is in the future; give an instant before now.",
    ),
]


@pytest.mark.parametrize(("arguments", "field", "message"), REFUSALS)
def test_bad_arguments_are_refused_naming_the_field_and_nothing_is_written(
    rct, tmp_path, arguments, field, message
):
    arguments = dict(arguments)
    if "as_of" in arguments:  # relative to the tests' clock, not the import's
        arguments["as_of"] = timezone.now() + arguments["as_of"]
    out = tmp_path / "out"
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        export_run(study=rct, by=user("datamanager"), out_dir=out, **arguments)
    assert list(refused.value.message_dict) == [field]
    assert message in refused.value.message_dict[field][0]
    assert not out.exists()
    assert not ExportRecord.objects.exists()


def test_unblinded_without_the_allocation_permission_is_refused(rct, tmp_path):
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        export_run(study=rct, by=user("datamanager"), unblinded=True, out_dir=tmp_path / "o")
    assert refused.value.message_dict == {
        "unblinded": [
            "Unblinded: you do not see the allocation of NCT00479934; export it blinded "
            "(kit numbers, no arm)."
        ]
    }
    assert not (tmp_path / "o").exists()
    assert not ExportRecord.objects.exists()


@pytest.mark.parametrize(
    ("username", "sites"),
    [
        ("monitor.bordeaux", None),
        ("monitor.bordeaux", ["BXP"]),
        ("investigator.bordeaux", ["BXP"]),
        ("investigator.rennes", None),
    ],
)
def test_site_staff_and_monitors_may_not_export(rct, tmp_path, username, sites):
    with pytest.raises(PermissionDenied):
        export_run(study=rct, by=user(username), sites=sites, out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()
    assert not ExportRecord.objects.exists()


def test_the_queries_do_not_grow_with_the_rows(rct, tmp_path):
    """One server-side cursor per form, whatever its rows: Bordeaux's six patients cost the
    queries Strasbourg's two do."""
    counts, rows = {}, {}
    for site in ("BXP", "STR"):
        with CaptureQueriesContext(connection) as queries:
            record = export_run(
                study=rct, by=user("datamanager"), sites=[site], out_dir=tmp_path / site
            )
        counts[site] = len(queries)
        rows[site] = sum(file.get("rows", 0) for file in record.files)
    assert rows["BXP"] > rows["STR"]
    assert counts["BXP"] == counts["STR"]


def test_french_labels_keep_their_accents(rct, tmp_path):
    export_run(study=rct, by=user("datamanager"), forms=["drug_accountability"], out_dir=tmp_path)
    dictionary = read(tmp_path / "csv" / "dictionary.csv")
    returned = dictionary[dictionary.variable == "units_returned"].iloc[0]
    with translation.override("fr"):
        french = str(
            FORM_MODELS["drug_accountability"]._meta.get_field("units_returned").verbose_name
        )
    assert returned.label_fr.lower() == french.lower()
    assert any(letter in french for letter in "éèàç")


def test_a_folder_that_is_not_empty_is_refused(rct, tmp_path):
    export_run(study=rct, by=user("admin"), unblinded=True, out_dir=tmp_path)
    before = {path: path.read_bytes() for path in files(tmp_path)}
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        export_run(study=rct, by=user("admin"), out_dir=tmp_path)
    assert refused.value.message_dict == {
        "out_dir": [f"Folder: {tmp_path} is not an empty folder; give a new or empty one."]
    }
    assert {path: path.read_bytes() for path in files(tmp_path)} == before
    assert ExportRecord.objects.count() == 1


def test_the_adverse_event_log_keeps_partial_dates_and_french_words(rct, tmp_path):
    from ecrf.safety.models import AdverseEvent

    export_run(study=rct, by=user("datamanager"), out_dir=tmp_path)
    log = read(tmp_path / "csv" / "adverse_event.csv")
    events = AdverseEvent.objects.filter(patient__study=rct).order_by(
        "patient__subject_code", "number"
    )
    assert list(log["term"]) == [event.term for event in events]
    assert list(log["subject_code"]) == [event.patient.subject_code for event in events]
    nausea = log[log["term"].str.startswith("Nausées")].iloc[0]
    assert re.fullmatch(r"\d{4}-\d{2}", nausea["onset_date"])
    assert nausea["term"] == "Nausées après les prises, sensation de réplétion gastrique"
    assert nausea["relatedness"] == "probable" and nausea["serious"] == "0"
    assert nausea["end_date"] == ""
    dictionary = read(tmp_path / "csv" / "dictionary.csv")
    onset = dictionary[dictionary.variable == "onset_date"].iloc[0]
    assert onset.form == "adverse_event" and onset.visits == "per_patient"
