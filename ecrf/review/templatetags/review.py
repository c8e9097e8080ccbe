from __future__ import annotations

from django import template
from django.db.models import Count
from django.utils.translation import gettext as _

from ecrf.accounts.permissions import Action
from ecrf.patients.visits import conditions_met, patient_visit_forms
from ecrf.review.matrix import FormCell, VisitCell
from ecrf.review.models import Query
from ecrf.review.plan import sdv_required
from ecrf.review.queries import instance_threads, open_queries_by_patient, open_queries_by_visit
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


# -- queries, on the pages of the lower apps (which may not import the review) ---------------


@register.inclusion_tag("review/_form_queries.html", takes_context=True)
def form_queries(context, instance) -> dict:
    """The open queries of a CRF instance with their threads, on the CRF's page (two
    queries; none for a form not saved yet). The fields they are about are named in
    `data-query-fields`, which static/js/queries.js marks on the form."""
    if instance is None or instance.pk is None:
        return {"threads": []}
    return {
        "threads": instance_threads(instance, closed=False),
        "study": context["study"],
        "on_form": True,
    }


@register.simple_tag
def patient_open_queries(patients) -> dict[int, int]:
    """{patient id: queries not closed} for a page of patients: one query."""
    return open_queries_by_patient(list(patients))


@register.filter
def count_for(counts: dict, key) -> int:
    return counts.get(key, 0)


@register.inclusion_tag("review/_casebook_queries.html", takes_context=True)
def casebook_queries(context, patient, columns) -> dict:
    """The casebook's counts of queries not closed, per visit and for the log: one query."""
    counts = open_queries_by_visit([patient])
    per_visit = [
        (column.visit, counts[(patient.pk, column.visit.pk)])
        for column in columns
        if (patient.pk, column.visit.pk) in counts
    ]
    return {
        "study": context["study"],
        "patient": patient,
        "total": sum(counts.values()),
        "per_visit": per_visit,
        "log": counts.get((patient.pk, None), 0),
    }


@register.inclusion_tag("review/_visit_queries.html", takes_context=True)
def visit_queries(context, visit) -> dict:
    """The visit page's line of queries not closed, per form (one query)."""
    patient = visit.patient
    protocol = patient.protocol_version.protocol
    rows = (
        Query.objects.unresolved()
        .filter(visit_id=visit.pk)
        .order_by()
        .values_list("entry__form_code")
        .annotate(n=Count("pk"))
    )
    per_form = sorted(
        (protocol.form_label(code) if code else _("the visit itself"), n) for code, n in rows
    )
    return {
        "study": context["study"],
        "patient": patient,
        "visit": visit,
        "total": sum(n for _label, n in per_form),
        "per_form": per_form,
    }


@register.simple_tag
def query_age_link(links: dict, bucket: str) -> str:
    """The dashboard's link to the queries of one age bucket (see views_dashboard._links)."""
    return links[f"queries_{bucket}"]
