"""The protocol file's `reminders:` section: validated like the rest, and updated in place."""

from __future__ import annotations

import copy

import pghistory.models
import pytest

from ecrf.studies.loader import load_protocol
from ecrf.studies.models import ProtocolVersion
from tests.factories import UserFactory
from tests.studies.test_french_labels import RCT_FILE, shipped, write
from tests.studies.test_protocol_schema import broken, refused  # noqa: F401 (fixtures)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"window_opens_in_days": [7, -1]},
            "reminders.window_opens_in_days[1]: must be >= 0, not -1",
        ),
        (
            {"window_closes_in_days": [3, 3]},
            "reminders: window_closes_in_days: day 3 is listed more than once",
        ),
        ({"overdue_repeat_days": 0}, "reminders.overdue_repeat_days: must be >= 1, not 0"),
        (
            {"send_at": "25:00"},
            'reminders.send_at: give a local time as "HH:MM" between "00:00" and "23:59", '
            "in quotes, not '25:00'",
        ),
        (
            {"send_at": 600},  # what YAML makes of an unquoted 10:00
            'reminders.send_at: give a local time as "HH:MM" between "00:00" and "23:59", '
            "in quotes, not 600",
        ),
        (
            {"pregnancy_test": {"days_before_inclusion": 0}},
            "reminders.pregnancy_test.days_before_inclusion: must be >= 1, not 0",
        ),
        ({"every_day": True}, "reminders.every_day: unknown field"),
    ],
)
def test_an_invalid_reminders_section_is_refused_with_its_place(broken, change, problem):  # noqa: F811
    problems = broken(lambda d: d["reminders"].update(change))
    assert problems == [f"bad.yaml: {problem}"]


@pytest.mark.django_db
@pytest.mark.usefixtures("no_protocols")
def test_changed_reminders_update_the_loaded_version_in_place_audited(tmp_path):
    before = load_protocol(RCT_FILE).protocol_version
    data = copy.deepcopy(shipped())
    data["reminders"]["window_closes_in_days"] = [5, 1]
    data["reminders"]["send_at"] = "07:30"

    diane = UserFactory(username="diane")
    result = load_protocol(write(tmp_path, data), by=diane)

    assert (result.created, result.updated) == (False, ("reminders",))
    assert ProtocolVersion.objects.filter(study=before.study).count() == 1
    before.refresh_from_db()
    assert before.protocol.reminders.window_closes_in_days == (5, 1)
    assert before.protocol.reminders.send_at == "07:30"
    (event,) = pghistory.models.Events.objects.tracks(before).filter(pgh_label="update")
    reason = event.pgh_context["reason"]
    assert reason.startswith("reminders of ") and reason.endswith("NCT00479934.yaml v1.0")
    assert event.pgh_context["user"] == diane.pk


@pytest.mark.django_db
@pytest.mark.usefixtures("no_protocols")
def test_anything_else_changed_is_still_an_amendment(tmp_path):
    load_protocol(RCT_FILE)
    data = copy.deepcopy(shipped())
    data["reminders"]["send_at"] = "07:30"
    data["visits"][2]["window_after_days"] = 10
    from ecrf.studies.protocol import ProtocolError

    with pytest.raises(ProtocolError, match="already loaded with different content"):
        load_protocol(write(tmp_path, data))
