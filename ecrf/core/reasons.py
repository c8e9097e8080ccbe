"""How much a reason must say: one rule for every reason the audit trail keeps.

A reason is read years later by a monitor or an inspector who was not there: "typo" or
"x" tells them nothing. The minimum is a team default [D], long enough for a few words
("Patient on holiday"), short enough never to be in the way.
"""

from __future__ import annotations

from django.utils.functional import lazy
from django.utils.translation import gettext as _

MIN_REASON_LENGTH = 10


def reason_problem(reason: str, *, label) -> str | None:
    """The message for a reason too short to be read later (None when it is long enough).

    Runs of spaces count as one: padding a reason out is not saying more.
    """
    if len(" ".join(reason.split())) >= MIN_REASON_LENGTH:
        return None
    return _("%(field)s: give at least %(count)d characters.") % {
        "field": label,
        "count": MIN_REASON_LENGTH,
    }


def _change_reason_missing() -> str:
    return _(
        "Give the reason for change: the form was already saved, and every change to saved "
        "data is kept in the audit trail with its reason."
    )


# Why a change to a saved form needs a reason: the form's required reason and crf_save say
# the same, in the language of the moment it is shown.
change_reason_missing = lazy(_change_reason_missing, str)
