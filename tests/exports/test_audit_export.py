"""The audit-trail export of the seeded trial, read back with pandas and compared with the
events in the database: a corrected value with its reason (old -> new), the date range,
the arm masked in a blinded export and present in an unblinded one."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from decimal import Decimal

import pandas
import pghistory.models
import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ecrf.crfs.models import SafetyLabs
from ecrf.exports.audit_trail import COLUMNS, MASK
from ecrf.exports.services import export_run
from ecrf.patients.models import Allocation, Patient
from ecrf.studies.models import Study

RCT = "NCT00479934"
REASON = "Transcription error: 12.1 g/dL on the laboratory report"


def user(username):
    return get_user_model().objects.get(username=username)


def read(path) -> pandas.DataFrame:
    return pandas.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


@pytest.fixture
def rct(seeded):
    return Study.objects.get(code=RCT)


@pytest.fixture
def correction(rct):
    """The demo's corrected hemoglobin: its form and the update event with its reason."""
    labs = SafetyLabs.objects.get(patient__subject_code="BXP-001", visit__code="M3")
    event = (
        pghistory.models.Events.objects.tracks(labs)
        .filter(pgh_label="update", pgh_context__reason=REASON)
        .get()
    )
    return labs, event


def test_a_corrected_value_shows_old_and_new_with_its_reason(rct, correction, tmp_path):
    labs, event = correction
    progress = []
    export_run(
        study=rct,
        by=user("datamanager"),
        formats=["audit"],
        out_dir=tmp_path,
        on_progress=lambda written, total: progress.append((written, total)),
    )
    trail = read(tmp_path / "audit" / "audit_trail.csv")
    assert list(trail.columns) == list(COLUMNS)
    rows = trail[
        (trail.object == "crfs.SafetyLabs")
        & (trail.object_id == str(labs.pk))
        & (trail.field == "hemoglobin_g_dl")
    ]
    assert list(rows.action) == ["insert", "update"]
    update = rows.iloc[1]
    old, new = event.pgh_diff["hemoglobin_g_dl"]
    assert (update.old_value, update.new_value) == (str(old), str(new)) == ("1.2", "12.1")
    assert update.reason == REASON
    assert update.user == get_user_model().objects.get(pk=event.pgh_context["user"]).username
    assert update.event_time_utc == event.pgh_created_at.astimezone(UTC).isoformat()
    assert (update.site, update.subject) == ("BXP", "BXP-001")
    assert rows.iloc[0].old_value == "" and rows.iloc[0].new_value == "1.2"
    # Oldest first, in UTC, and one row per changed field: the update changed nothing else
    # that a reader needs (not the version, not the save time).
    assert list(trail.event_time_utc) == sorted(trail.event_time_utc)
    assert trail.event_time_utc.str.endswith("+00:00").all()
    this_update = (trail.object_id == str(labs.pk)) & (trail.action == "update")
    changed = trail[(trail.object == "crfs.SafetyLabs") & this_update]
    assert list(changed.field) == ["hemoglobin_g_dl"]
    # Every event of the trail was counted once: the progress reached its total.
    assert progress[-1][0] == progress[-1][1] > 0
    events = trail.drop_duplicates(["event_time_utc", "object", "object_id", "action"])
    assert progress[-1][1] >= len(events)
    # Another study's rows are not in this study's trail.
    assert not trail.subject.str.startswith("REN-").any()


def _later_correction(event, at, hemoglobin: str, reason: str):
    """Another correction of the same form, recorded at `at`.

    The seeded events all carry the instant of the one transaction the tests run in
    (PostgreSQL's now()), so a later one is written as the trigger would have written it:
    the same row, a new value, a later time.
    """
    model = SafetyLabs.pgh_event_model
    values = model.objects.filter(pgh_id=event.pgh_id).values().get()
    del values["pgh_id"]
    values |= {
        "pgh_created_at": at,
        "pgh_context": {**event.pgh_context, "reason": reason},
        "hemoglobin_g_dl": Decimal(hemoglobin),
    }
    with time_machine.travel(at, tick=False):  # pgh_created_at is set on creation
        return model.objects.create(**values)


def test_the_date_range_keeps_only_the_events_inside(rct, correction, tmp_path):
    labs, event = correction
    seeded_at = event.pgh_created_at
    _later_correction(event, seeded_at + timedelta(hours=1), "12.3", "Second reading")
    _later_correction(event, seeded_at + timedelta(hours=2), "12.4", "Third reading")
    start, end = seeded_at + timedelta(minutes=30), seeded_at + timedelta(minutes=90)
    export_run(
        study=rct,
        by=user("datamanager"),
        formats=["audit"],
        out_dir=tmp_path,
        audit_from=start,
        audit_to=end,
    )
    trail = read(tmp_path / "audit" / "audit_trail.csv")
    # Only the second reading is inside; it still knows the value it replaced, recorded
    # before the range.
    assert list(trail.field) == ["hemoglobin_g_dl"]
    row = trail.iloc[0]
    assert (row.old_value, row.new_value, row.reason) == ("12.1", "12.3", "Second reading")
    assert row.event_time_utc == (seeded_at + timedelta(hours=1)).astimezone(UTC).isoformat()
    # Open-ended: from the start only, the last two readings; until an end only, the rest.
    export_run(
        study=rct, by=user("datamanager"), formats=["audit"], out_dir=tmp_path / "from",
        audit_from=start,
    )  # fmt: skip
    later = read(tmp_path / "from" / "audit" / "audit_trail.csv")
    assert list(later.new_value) == ["12.3", "12.4"]
    assert list(later.old_value) == ["12.1", "12.3"]
    export_run(
        study=rct, by=user("datamanager"), formats=["audit"], out_dir=tmp_path / "to",
        audit_to=end,
    )  # fmt: skip
    until = read(tmp_path / "to" / "audit" / "audit_trail.csv")
    assert "12.4" not in set(until.new_value) and "12.3" in set(until.new_value)
    assert (pandas.to_datetime(until.event_time_utc) <= end).all()


def _arm_words(study) -> list[str]:
    arms = study.current_protocol.protocol.arms
    words = [arm.code for arm in arms] + [arm.label_en for arm in arms]
    return words + [arm.label_fr for arm in arms if arm.label_fr]


def test_a_blinded_audit_export_masks_the_arm(rct, tmp_path):
    export_run(study=rct, by=user("admin"), formats=["audit"], out_dir=tmp_path)
    path = tmp_path / "audit" / "audit_trail.csv"
    content = path.read_text(encoding="utf-8")
    for word in _arm_words(rct):
        assert not re.search(rf"\b{re.escape(word)}\b", content, re.IGNORECASE), word
    trail = read(path)
    arms = trail[(trail.object == "patients.Allocation") & (trail.field == "arm")]
    assert len(arms) == Allocation.objects.filter(study=rct).count()
    assert set(arms.new_value) == {MASK}
    seeds = trail[(trail.object == "patients.AllocationList") & (trail.field == "seed")]
    assert len(seeds) and set(seeds.new_value) == {MASK}
    # The kits are no secret.
    kits = trail[(trail.object == "patients.Allocation") & (trail.field == "kit_number")]
    assert set(kits.new_value) == set(
        Allocation.objects.filter(study=rct).values_list("kit_number", flat=True)
    )


def test_an_unblinded_audit_export_shows_the_arm(rct, tmp_path):
    export_run(study=rct, by=user("admin"), formats=["audit"], unblinded=True, out_dir=tmp_path)
    trail = read(tmp_path / "audit" / "audit_trail.csv")
    arms = trail[(trail.object == "patients.Allocation") & (trail.field == "arm")]
    stored = dict(Allocation.objects.filter(study=rct).values_list("pk", "arm"))
    assert dict(zip(arms.object_id.astype(int), arms.new_value, strict=True)) == stored
    assert MASK not in set(trail.new_value)


def test_a_site_export_keeps_the_trail_of_its_site(rct, tmp_path):
    export_run(
        study=rct, by=user("datamanager"), formats=["audit"], sites=["STR"], out_dir=tmp_path
    )
    trail = read(tmp_path / "audit" / "audit_trail.csv")
    assert set(trail.site) <= {"STR", ""}
    assert set(trail.subject) - {""} == set(
        Patient.objects.filter(study=rct, site__code="STR").values_list("subject_code", flat=True)
    )
    # Study-wide rows (the study, its protocol version) are in every site's trail.
    assert {"studies.Study", "studies.ProtocolVersion"} <= set(trail.object)
    assert "definition" not in set(trail.field)


def test_the_audit_queries_do_not_grow_with_the_events(rct, tmp_path):
    counts, rows = {}, {}
    for site in ("BXP", "STR"):
        with CaptureQueriesContext(connection) as queries:
            record = export_run(
                study=rct,
                by=user("datamanager"),
                formats=["audit"],
                sites=[site],
                out_dir=tmp_path / site,
            )
        counts[site] = len(queries)
        rows[site] = record.files[0]["rows"]
    assert rows["BXP"] > rows["STR"]
    assert counts["BXP"] == counts["STR"]
