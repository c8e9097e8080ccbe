from __future__ import annotations

from django import template

from ecrf.accounts.permissions import Action
from ecrf.patients.visits import conditions_met, patient_visit_forms
from ecrf.review.matrix import FormCell, VisitCell
from ecrf.review.plan import sdv_required
from ecrf.review.states import cell_state

register = template.Library()


@register.inclusion_tag("review/_visit_card.html", takes_context=True)
def visit_sdv_card(context, visit, entries, actions) -> dict:
    """The visit page's SDV card for monitors and data managers (no query: the page has
    read the visit's form index entries, with who verified and who reset them).

    A tag, so that the visit page (crfs) shows the review without importing it. Site staff
    do not see it: which forms need SDV would tell them which patients are sampled.
    """
    if Action.SDV not in actions:
        return {"shown": False}
    patient = visit.patient
    protocol = patient.protocol_version.protocol
    # In the protocol's order of the visit's forms, as the page lists them.
    order = {
        f.form: n
        for n, f in enumerate(patient_visit_forms(patient, visit.code, conditions_met(patient)))
    }
    cell = VisitCell(visit=visit)
    for entry in sorted(entries, key=lambda e: (order.get(e.form_code, len(order)), e.pk)):
        required = sdv_required(patient, entry.form_code, entry)
        label = protocol.form_label(entry.form_code) + (f" · {entry.key}" if entry.key else "")
        cell.forms.append(
            FormCell(
                code=entry.form_code,
                label=label,
                state=cell_state(entry, required=required),
                entry=entry,
                required=required,
            )
        )
    return {
        "shown": True,
        "study": context["study"],
        "request": context["request"],
        "cell": cell,
        "csrf_token": context.get("csrf_token"),
    }
