from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from zoneinfo import ZoneInfo

from django import template
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from ecrf.accounts.permissions import Action
from ecrf.patients.models import Visit
from ecrf.patients.visits import conditions_met, patient_visit_forms
from ecrf.review.matrix import FormCell, VisitCell
from ecrf.review.models import Query, Signature
from ecrf.review.plan import sdv_required
from ecrf.review.queries import instance_threads, open_queries_by_patient, open_queries_by_visit
from ecrf.review.signatures import printed_name
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
        # The site corrects on this page: the button prefills the reason for change with
        # the query, and the save answers it (queries.query_answered_by_save).
        "can_correct": bool(context.get("can_enter")),
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


# -- signatures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureShown:
    """A signature as every screen showing the signed data shows it: who, when (the site's
    time zone, and UTC), what it means; a voided one with the change that voided it."""

    signature: Signature
    target: str
    local: str
    utc: str
    iso: str
    void: str

    @property
    def valid(self) -> bool:
        return self.signature.voided_at is None


def signatures_shown(signatures, *, zone: str) -> list[SignatureShown]:
    """The signatures with what the screens say of them (no query: `voided_by` and `visit`
    read with them)."""
    tz = ZoneInfo(zone)
    shown = []
    for s in signatures:
        if s.visit_id:
            visit = s.visit
            name = f"{visit.code} #{visit.repeat}" if visit.repeat > 1 else visit.code
            target = _("Visit %s") % name
        else:
            target = _("Casebook")
        void = ""
        if s.voided_at is not None:
            who = printed_name(s.voided_by) if s.voided_by_id else _("the system")
            void = _("Signature voided by %(change)s on %(when)s by %(who)s.") % {
                "change": s.void_reason,
                "when": date_format(s.voided_at.astimezone(tz), "Y-m-d H:i T"),
                "who": who,
            }
        shown.append(
            SignatureShown(
                signature=s,
                target=target,
                local=date_format(s.signed_at.astimezone(tz), "Y-m-d H:i T"),
                utc=s.signed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                iso=s.signed_at.astimezone(UTC).isoformat(),
                void=void,
            )
        )
    return shown


def _signatures(where) -> list[Signature]:
    return list(
        Signature.objects.filter(where)
        .select_related("visit", "voided_by")
        .order_by("signed_at", "pk")
    )


@register.inclusion_tag("review/_signatures.html", takes_context=True)
def visit_signatures(context, visit, actions) -> dict:
    """The visit page's signatures: the visit's own and the casebook's, which covers it too
    (one query), and the sign button for the site's investigator."""
    patient = visit.patient
    signatures = _signatures(
        Q(patient_id=patient.pk) & (Q(visit_id=visit.pk) | Q(visit__isnull=True))
    )
    signed = any(s.visit_id == visit.pk and s.voided_at is None for s in signatures)
    can_sign = Action.SIGN in actions and visit.status == Visit.Status.COMPLETE and not signed
    return {
        "shown": signatures_shown(signatures, zone=patient.site.timezone),
        "sign_url": reverse(
            "review:visit_sign",
            args=[context["study"].code, patient.subject_code, visit.code, visit.repeat],
        )
        if can_sign
        else "",
        "sign_label": _("Sign the visit"),
        "print_url": "",
    }


@register.inclusion_tag("review/_signatures.html", takes_context=True)
def form_signatures(context, visit) -> dict:
    """On a form's page, the signatures over its data: the visit's and the casebook's (one
    query), shown only when there are some; signing is on the visit page."""
    return {**visit_signatures(context, visit, ()), "hide_empty": True}


@register.inclusion_tag("review/_signatures.html", takes_context=True)
def casebook_signatures(context, patient, actions) -> dict:
    """The casebook page's signatures: the casebook's and its visits' (one query), the sign
    button for the site's investigator, and the printable casebook."""
    signatures = _signatures(Q(patient_id=patient.pk))
    signed = any(s.visit_id is None and s.voided_at is None for s in signatures)
    can_sign = Action.SIGN in actions and not signed
    code = context["study"].code
    return {
        "shown": signatures_shown(signatures, zone=patient.site.timezone),
        "sign_url": reverse("review:casebook_sign", args=[code, patient.subject_code])
        if can_sign
        else "",
        "sign_label": _("Sign the casebook"),
        "print_url": reverse("review:casebook_print", args=[code, patient.subject_code]),
    }


@register.inclusion_tag("review/_signature_list.html")
def printed_signatures(signatures, patient) -> dict:
    """A list of signatures on the printable casebook (read with the page: no query)."""
    return {"shown": signatures_shown(signatures, zone=patient.site.timezone)}


@register.inclusion_tag("review/_log_signatures.html")
def log_signatures(patient) -> dict:
    """The casebook's signatures, which cover the patient's log, on the adverse-event
    pages (one query): whoever reads signed data sees who signed it, and any void."""
    signatures = _signatures(Q(patient_id=patient.pk, visit__isnull=True))
    return {"shown": signatures_shown(signatures, zone=patient.site.timezone)}
