"""An export with a past cut-off holds what the database held at that instant.

These tests are transactional, apart from tests/exports: the audit events are stamped with
the start of the transaction that wrote them (PostgreSQL's NOW()), so the writes of one
test transaction, or of tests/exports' seeded package (one transaction), all bear one
instant. Here the demo is seeded and changed in transactions of their own, as in
production, and each change bears its own instant.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from ecrf.crfs.models import FORM_MODELS, MdmCytokines, Mrss
from ecrf.crfs.services import crf_save
from ecrf.demo.management.commands.seed_demo import AE_DEFAULTS
from ecrf.exports.services import export_run
from ecrf.patients.models import Patient
from ecrf.patients.visits import visit_record_date
from ecrf.safety.models import AdverseEvent
from ecrf.safety.services.adverse_events import ae_create, ae_update
from ecrf.studies.models import Study
from tests.exports.test_csv_export import read, same_number_or_text
from tests.exports_as_of.history import (
    database_clock,
    expected_datasets,
    keep_up_with_the_database,
)

pytestmark = pytest.mark.django_db(transaction=True)

RCT, COHORT = "NCT00479934", "NCT04206644"
INSTANT = timedelta(microseconds=1)


def user(username):
    return get_user_model().objects.get(username=username)


@pytest.fixture
def demo(tmp_path_factory):
    mailer = {
        "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "OPTIONS": {"file_path": str(tmp_path_factory.mktemp("mail"))},
    }
    with override_settings(MAILERS={"default": mailer}):
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


def manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def compare_with_history(study, folder, at) -> int:
    """Every exported dataset equals the database at `at` as its events tell, cell by cell;
    the rows compared."""
    written = manifest(folder)
    expected = expected_datasets(study, at, forms=written["forms"], unblinded=True)
    compared = 0
    for code, rows in expected.items():
        frame = read(folder / "csv" / f"{code}.csv")
        assert len(frame) == len(rows), code
        for (_index, row), values in zip(frame.iterrows(), rows, strict=True):
            for column, value in zip(frame.columns, values, strict=True):
                assert same_number_or_text(row[column], value), (code, column, value)
            compared += 1
    return compared


def corrected_by(model, reason: str):
    """The audit event of the correction with this reason, and the object's row before it."""
    events = model.pgh_event_models["insert"].objects
    correction = events.get(pgh_context__reason=reason)
    before = (
        events.filter(pgh_obj_id=correction.pgh_obj_id, pgh_id__lt=correction.pgh_id)
        .order_by("pgh_id")
        .last()
    )
    return correction, before


def row_of(frame, **keys):
    found = frame
    for name, value in keys.items():
        found = found[found[name] == value]
    assert len(found) == 1, keys
    return found.iloc[0]


def test_an_export_as_of_a_past_instant_holds_what_the_database_held_then(
    demo, fixed_clock, tmp_path
):
    rct, cohort = Study.objects.get(code=RCT), Study.objects.get(code=COHORT)
    admin, investigator = user("admin"), user("investigator.bordeaux")
    keep_up_with_the_database(fixed_clock)

    # Just before the demo's correction of an mRSS face, in the review after the data entry:
    # the value before it (and the total with it), and every other cell as the events say.
    face, face_before = corrected_by(
        Mrss, "Transcription error: the examination sheet of M3 gives 2 for the face"
    )
    before_correction = face.pgh_created_at - INSTANT
    for study in (rct, cohort):
        folder = tmp_path / "before_correction" / study.code
        record = export_run(
            study=study, by=admin, unblinded=True, as_of=before_correction, out_dir=folder
        )
        assert compare_with_history(study, folder, before_correction) > 0
        assert manifest(folder)["cut_off"] == before_correction.isoformat()
        assert record.as_of == before_correction
    mrss = read(tmp_path / "before_correction" / RCT / "csv" / "mrss.csv")
    m3 = row_of(mrss, subject_code="BXP-002", visit_code="M3")
    assert int(m3["face"]) == face_before.face != Mrss.objects.get(pk=face.pgh_obj_id).face
    assert int(m3["total"]) == face_before.total

    # The data as they are before the changes, exported the plain way.
    for study in (rct, cohort):
        export_run(study=study, by=admin, unblinded=True, out_dir=tmp_path / "then" / study.code)
    cut_off = database_clock()

    # Then, each in a transaction of its own: ...
    patient = Patient.objects.get(subject_code="BXP-005")
    screening = patient.visits.get(code="SCR")
    mrss = Mrss.objects.get(visit=screening)
    face, hand, status = mrss.face, mrss.hand_r, mrss.status
    # A value corrected, another blanked (the form no longer complete, if it was), ...
    crf_save(
        visit=screening,
        form_code="mrss",
        values={"face": (face + 1) % 4, "hand_r": None},
        by=investigator,
        expected_version=mrss.version,
        reason="Re-read on the examination sheet",
    )
    # ... the visit re-dated, a form started, an adverse event recorded, ...
    visit_record_date(
        visit=screening,
        by=investigator,
        visit_date=screening.visit_date + timedelta(days=1),
        expected_version=screening.version,
        change_reason="The examination was the day after",
    )
    crf_save(
        visit=screening,
        form_code="echocardiography",
        values={},
        by=investigator,
        expected_version=0,
    )
    ae_create(
        patient=patient,
        by=investigator,
        values={
            **AE_DEFAULTS,
            "term": "Headache",
            "onset_date": screening.visit_date.isoformat(),
            "aware_at": timezone.now(),
        },
    )
    # ... an adverse event's outcome updated, ...
    nausea = AdverseEvent.objects.get(patient__subject_code="BXP-002", number=2)
    ae_update(
        event=nausea,
        by=investigator,
        values={
            **{name: getattr(nausea, name) for name in AE_DEFAULTS},
            "term": nausea.term,
            "onset_date": nausea.onset_date,
            "aware_at": nausea.aware_at,
            "ongoing": False,
            "end_date": screening.visit_date,
            "outcome": "recovered",
        },
        expected_version=nausea.version,
        reason="Follow-up call: recovered",
    )
    # ... and a culture deleted (the history keeps its last row).
    culture = MdmCytokines.objects.filter(patient__study=cohort).order_by("pk").first()
    MdmCytokines.objects.filter(pk=culture.pk).delete()

    after = database_clock()
    keep_up_with_the_database(fixed_clock)
    for study in (rct, cohort):
        for name, at in (("as_of", cut_off), ("after", after)):
            export_run(
                study=study,
                by=admin,
                unblinded=True,
                as_of=at,
                out_dir=tmp_path / name / study.code,
            )
        export_run(study=study, by=admin, unblinded=True, out_dir=tmp_path / "now" / study.code)
        then = manifest(tmp_path / "then" / study.code)
        as_of = manifest(tmp_path / "as_of" / study.code)
        # File for file, byte for byte (their SHA-256): the data as they were, ...
        assert as_of["files"] == then["files"], study.code
        assert as_of["cut_off"] == cut_off.isoformat()
        compare_with_history(study, tmp_path / "as_of" / study.code, cut_off)
        # ... and after the changes, as they are now (the deleted culture gone).
        assert (
            manifest(tmp_path / "after" / study.code)["files"]
            == (manifest(tmp_path / "now" / study.code)["files"])
        )

    # The changes are there now, and were not then.
    now = tmp_path / "now" / RCT / "csv"
    then = tmp_path / "as_of" / RCT / "csv"
    key = {"subject_code": "BXP-005", "visit_code": "SCR"}
    assert int(row_of(read(then / "mrss.csv"), **key)["face"]) == face
    assert row_of(read(then / "mrss.csv"), **key)["hand_r"] == ("" if hand is None else str(hand))
    assert row_of(read(then / "mrss.csv"), **key)["form_status"] == status
    assert int(row_of(read(now / "mrss.csv"), **key)["face"]) == (face + 1) % 4
    assert row_of(read(now / "mrss.csv"), **key)["hand_r"] == ""
    assert row_of(read(now / "mrss.csv"), **key)["form_status"] == "in_progress"
    for name in ("mrss", "demographics"):
        assert row_of(read(then / f"{name}.csv"), **key)["visit_date"] == (
            screening.visit_date.isoformat()
        )
        assert row_of(read(now / f"{name}.csv"), **key)["visit_date"] == (
            (screening.visit_date + timedelta(days=1)).isoformat()
        )
    assert "BXP-005" not in set(read(then / "echocardiography.csv")["subject_code"])
    assert "BXP-005" in set(read(now / "echocardiography.csv")["subject_code"])
    assert "Headache" not in set(read(then / "adverse_event.csv")["term"])
    assert "Headache" in set(read(now / "adverse_event.csv")["term"])
    nausea_then = row_of(read(then / "adverse_event.csv"), subject_code="BXP-002", number="2")
    nausea_now = row_of(read(now / "adverse_event.csv"), subject_code="BXP-002", number="2")
    assert (nausea_then["outcome"], nausea_then["ongoing"]) == (nausea.outcome, "1")
    assert (nausea_now["outcome"], nausea_now["ongoing"]) == ("recovered", "0")
    cultures_then = read(tmp_path / "as_of" / COHORT / "csv" / "mdm_cytokines.csv")
    cultures_now = read(tmp_path / "now" / COHORT / "csv" / "mdm_cytokines.csv")
    assert len(cultures_then) == len(cultures_now) + 1
    assert FORM_MODELS["mdm_cytokines"].objects.filter(pk=culture.pk).count() == 0
