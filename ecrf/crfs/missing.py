"""Why a saved form is still "In progress", in the words of the screens.

`missing_fields()` on the models names fields by their keys (and eligibility lines as
``answers.<id>``); users read labels. The primary endpoint's baseline is the one
incomplete form a site must not leave behind unnoticed, so it gets its own warning.
"""

from __future__ import annotations

from django.utils.text import capfirst
from django.utils.translation import gettext as _

# How many labels the visit page shows before "and N more": a row, not a report.
BRIEF = 3


def missing_labels(instance) -> list[str]:
    """The labels of the fields still missing, in the form's order."""
    names = instance.missing_fields()
    model = type(instance)
    labels = []
    for name in names:
        if name.startswith("answers."):
            labels.append(name.removeprefix("answers."))  # the criterion id, as on the checklist
        else:
            labels.append(str(capfirst(model._meta.get_field(name).verbose_name)))
    grid = model.AREA_GRID
    areas = [i for i, name in enumerate(names) if grid is not None and name in grid.fields]
    if areas:
        # A blank area is also an answer once its reason is given: say so after the areas.
        labels[areas[-1]] += " " + _("(or give the not-assessable reason)")
    return labels


def missing_text(instance, brief: bool = False) -> str:
    labels = missing_labels(instance)
    if brief and len(labels) > BRIEF:
        more = len(labels) - BRIEF
        return _("%(fields)s and %(count)d more") % {
            "fields": ", ".join(labels[:BRIEF]),
            "count": more,
        }
    return ", ".join(labels)


def primary_endpoint_form(protocol) -> str | None:
    """The form the protocol marks as its primary endpoint, if it takes it at inclusion.

    The protocol file says it in a visit form's note ("primary endpoint"); the value at
    the inclusion visit is the baseline the endpoint is measured against.
    """
    marked = {
        item.form
        for visit in protocol.visits
        for item in visit.forms
        if "primary endpoint" in item.note.lower()
    }
    return next((item.form for item in protocol.day0_visit.forms if item.form in marked), None)


def baseline_warning(instance, label: str) -> str | None:
    """A warning when the primary endpoint's baseline was saved incomplete (None: no need)."""
    if instance.status == instance.Status.COMPLETE or instance.visit is None:
        return None
    protocol = instance.protocol_version.protocol
    if instance.visit.code != protocol.day0_visit.code:
        return None
    if primary_endpoint_form(protocol) != instance.FORM_CODE:
        return None
    return _(
        "%(form)s at %(visit)s is the baseline of the primary endpoint: while it is "
        "incomplete, the patient's baseline is missing."
    ) % {"form": label, "visit": instance.visit.code}
