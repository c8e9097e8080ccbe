"""Query pages: the list for a study or a site, a query's thread with what the user may do
next, and raising a query from the SDV page of a form."""

from __future__ import annotations

import django_filters
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from ecrf.accounts.access import scope
from ecrf.accounts.permissions import Action, actions_for
from ecrf.core.errors import StaleVersion
from ecrf.core.pagination import paginate
from ecrf.crfs.services import WarningsPending
from ecrf.patients.models import FormIndexEntry
from ecrf.patients.selectors import study_for
from ecrf.review.models import Query, QueryMessage
from ecrf.review.queries import (
    AGE_BUCKETS,
    age_bucket_filter,
    days_open,
    query_ageing,
    query_answer,
    query_close,
    query_correct,
    query_raise,
    query_reopen,
    query_target,
    with_age,
)
from ecrf.review.sdv import WHOLE, entry_label, entry_model, field_label
from ecrf.review.states import QueryStatus
from ecrf.review.views_sdv import _next_url, _value_shown
from ecrf.studies.models import Site, StudySite

PAGE_SIZE = 25
SYSTEM = "system"


class QueryFilter(django_filters.FilterSet):
    """The list's filters: status, days open, form, visit, who raised it, patient, site."""

    status = django_filters.ChoiceFilter(choices=QueryStatus.choices, label=gettext_lazy("Status"))
    age = django_filters.ChoiceFilter(
        choices=[(code, label) for code, label, *_rest in AGE_BUCKETS],
        label=gettext_lazy("Days open"),
        method="filter_age",
    )
    form = django_filters.ChoiceFilter(
        field_name="entry__form_code", label=gettext_lazy("Form"), choices=[]
    )
    visit = django_filters.ChoiceFilter(
        field_name="visit__code", label=gettext_lazy("Visit"), choices=[]
    )
    raised_by = django_filters.ChoiceFilter(
        label=gettext_lazy("Raised by"), choices=[], method="filter_raised_by"
    )
    q = django_filters.CharFilter(
        field_name="patient__subject_code",
        lookup_expr="icontains",
        label=gettext_lazy("Subject code"),
    )
    site = django_filters.ChoiceFilter(
        field_name="patient__site__code", label=gettext_lazy("Site"), choices=[]
    )

    class Meta:
        model = Query
        fields = ["status", "age", "form", "visit", "raised_by", "q", "site"]

    def __init__(self, *args, protocol, sites, raisers, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["form"].extra["choices"] = [
            (spec.code, spec.label) for spec in protocol.forms
        ] + [("sae_report", _("SAE report"))]
        self.filters["visit"].extra["choices"] = [(v.code, v.code) for v in protocol.visits]
        self.filters["site"].extra["choices"] = [(s.code, s.code) for s in sites]
        self.filters["raised_by"].extra["choices"] = [(SYSTEM, _("the system"))] + [
            (str(pk), name) for pk, name in raisers
        ]

    def filter_age(self, queryset, name, value):
        return queryset.filter(age_bucket_filter(value)) if value else queryset

    def filter_raised_by(self, queryset, name, value):
        if value == SYSTEM:
            return queryset.filter(raised_by__isnull=True)
        return queryset.filter(raised_by_id=value) if value else queryset


def _person(user) -> str:
    if user is None:
        return _("the system")
    return user.get_full_name() or user.get_username()


def _shared_protocols(queries, versions) -> None:
    for query in queries:
        query.patient.protocol_version = versions[query.patient.protocol_version_id]


@login_required
def query_list(request, study_code: str, site_code: str | None = None):
    """The queries of a study, or of one site, newest first, with their ageing."""
    study = study_for(request.user, study_code)
    queries = Query.objects.visible_to(request.user).filter(patient__study=study)
    sites = Site.objects.filter(
        study_sites__in=StudySite.objects.filter(
            scope(request.user).site_filter("study_id", "site_id"), study=study
        )
    ).order_by("code")
    site = None
    if site_code is not None:
        site = next((s for s in sites if s.code == site_code), None)
        if site is None:
            raise Http404(_("No such site in this study."))
        queries = queries.filter(patient__site=site)
    versions = {version.pk: version for version in study.protocol_versions.all()}
    current = max(versions.values(), key=lambda version: version.loaded_at)
    raisers = [
        (pk, " ".join(filter(None, (first, last))) or username)
        for pk, first, last, username in queries.exclude(raised_by=None)
        .order_by("raised_by__username")
        .values_list(
            "raised_by", "raised_by__first_name", "raised_by__last_name", "raised_by__username"
        )
        .distinct()
    ]
    data = request.GET.copy() if request.GET else None
    filterset = QueryFilter(
        data,
        queryset=with_age(queries),
        protocol=current.protocol,
        sites=sites if site is None else [],
        raisers=raisers,
    )
    question = QueryMessage.objects.filter(
        query=OuterRef("pk"), kind=QueryMessage.Kind.RAISE
    ).values("text")[:1]
    rows = (
        filterset.qs.select_related("patient__site", "entry", "visit", "raised_by")
        .annotate(question=Subquery(question))
        .order_by("-opened_at", "-pk")
    )
    page, query = paginate(request, rows, size=PAGE_SIZE)
    _shared_protocols(page, versions)
    return render(
        request,
        "review/queries.html",
        {
            "study": study,
            "site": site,
            "sites": list(sites),
            "filter": filterset,
            "page": page,
            "query": query,
            "rows": [
                {
                    "query": q,
                    "target": query_target(q),
                    "days": days_open(q),
                    "raised_by": _person(q.raised_by),
                }
                for q in page
            ],
            "ageing": [
                (code, label, count)
                for (code, label, *_rest), count in zip(
                    AGE_BUCKETS,
                    query_ageing(filterset.qs.unresolved()).values(),
                    strict=True,
                )
            ],
        },
    )


# -- one query ---------------------------------------------------------------------------------


class TextForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("Message"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("At least 10 characters; kept in the thread with your name."),
    )


def _correction_form(query: Query, instance, data=None) -> forms.Form | None:
    """A form for the one field queried (None: a whole form, a visit, an SAE report)."""
    if query.entry is None or not query.field or query.entry.form_code == "sae_report":
        return None
    try:
        model_field = entry_model(query.entry.form_code)._meta.get_field(query.field)
    except FieldDoesNotExist:
        return None
    field = model_field.formfield()
    if field is None:
        return None
    form = forms.Form(data, initial={"value": getattr(instance, query.field, None)})
    form.fields["value"] = field
    field.label = _("Corrected value of %s") % field_label(query.entry.form_code, query.field)
    field.required = True
    if not isinstance(field.widget, forms.CheckboxInput | forms.RadioSelect):
        field.widget.attrs.setdefault("class", "form-control form-control-sm")
    form.fields["text"] = forms.CharField(
        label=_("Explanation (optional)"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    return form


def _query_for(request, study, query_id: int) -> Query:
    return get_object_or_404(
        Query.objects.visible_to(request.user).select_related(
            "patient__site", "patient__protocol_version", "entry", "visit", "raised_by"
        ),
        patient__study=study,
        pk=query_id,
    )


def _refused(request, exc) -> None:
    if isinstance(exc, StaleVersion):
        messages.error(
            request,
            _("%(what)s was changed since you opened the page: read it again.")
            % {"what": exc.label},
        )
    elif isinstance(exc, WarningsPending):
        messages.error(
            request,
            _("Confirm this value on the form itself: %s")
            % "; ".join(w.message for w in exc.warnings),
        )
    elif isinstance(exc, ValidationError):
        messages.error(request, " ".join(exc.messages))
    else:
        messages.error(request, str(exc) or _("You may not do this here."))


@login_required
@require_http_methods(["GET", "POST"])
def query_detail(request, study_code: str, query_id: int):
    """A query's thread, and the answer, correction, close or reopen the user may make."""
    study = study_for(request.user, study_code)
    query = _query_for(request, study, query_id)
    patient = query.patient
    here = reverse("review:query", args=[study.code, query.pk])
    instance = None
    if query.entry is not None:
        instance = (
            entry_model(query.entry.form_code).objects.filter(pk=query.entry.object_id).first()
        )
    actions = actions_for(request.user, patient=patient)
    can_answer = Action.ANSWER_QUERY in actions and query.status in (
        QueryStatus.OPEN,
        QueryStatus.REOPENED,
    )
    can_close = Action.CLOSE_QUERY in actions and query.status != QueryStatus.CLOSED
    can_reopen = Action.CLOSE_QUERY in actions and query.status == QueryStatus.ANSWERED
    can_correct = can_answer and Action.CORRECT in actions and instance is not None
    text_form, correction = TextForm(), None
    if can_correct:
        correction = _correction_form(query, instance)
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "correct":
                correction = _correction_form(query, instance, request.POST)
                if correction is None or not correction.is_valid():
                    if correction is None:
                        raise ValidationError(_("This query is not corrected here."))
                    raise ValidationError(
                        _("The corrected value: %s")
                        % " ".join(e for errors in correction.errors.values() for e in errors)
                    )
                try:
                    version = int(request.POST.get("version", ""))
                except ValueError:
                    version = -1
                query_correct(
                    by=request.user,
                    query=query,
                    values={query.field: correction.cleaned_data["value"]},
                    expected_version=version,
                    text=correction.cleaned_data["text"],
                )
                done = _("%s: the value is corrected.")
            else:
                service, done = {
                    "answer": (query_answer, _("%s: answered.")),
                    "close": (query_close, _("%s: closed.")),
                    "reopen": (query_reopen, _("%s: reopened.")),
                }.get(action, (None, ""))
                if service is None:
                    raise ValidationError(_("This request does not say what to do."))
                service(by=request.user, query=query, text=request.POST.get("text", ""))
        except (ValidationError, PermissionDenied, StaleVersion, WarningsPending) as exc:
            _refused(request, exc)
        else:
            messages.success(request, done % (_("Query #%d") % query.pk))
        return redirect(here)
    thread = list(QueryMessage.objects.filter(query=query).select_related("by").order_by("pk"))
    value = ""
    if instance is not None and query.field:
        value = _value_shown(instance, query.field)
    return render(
        request,
        "review/query.html",
        {
            "study": study,
            "patient": patient,
            "query": query,
            "target": query_target(query),
            "thread": [(m, _person(m.by)) for m in thread],
            "raised_by": _person(query.raised_by),
            "days": days_open(query),
            "value": value,
            "instance": instance,
            "text_form": text_form,
            "correction": correction,
            "can_answer": can_answer,
            "can_correct": can_correct and correction is not None,
            "can_close": can_close,
            "can_reopen": can_reopen,
            "form_url": _form_url(study, query),
            "can_sdv": Action.SDV in actions,
        },
    )


def _form_url(study, query: Query) -> str:
    """Where the site corrects a whole form: the CRF page (the log for an adverse event)."""
    entry, patient = query.entry, query.patient
    if entry is None or entry.visit_id is None:
        if entry is not None:
            return reverse("safety:log", args=[study.code, patient.subject_code])
        return reverse(
            "crfs:visit",
            args=[study.code, patient.subject_code, query.visit.code, query.visit.repeat],
        )
    return reverse(
        "crfs:form",
        args=[
            study.code,
            patient.subject_code,
            entry.visit.code,
            entry.visit.repeat,
            entry.form_code,
        ],
    )


@login_required
@require_POST
def query_raise_view(request, study_code: str, entry_id: int):
    """Raise a query from the SDV page of a form: on one field or the whole form."""
    study = study_for(request.user, study_code)
    entry = get_object_or_404(
        FormIndexEntry.objects.visible_to(request.user).select_related(
            "patient__protocol_version", "visit"
        ),
        patient__study=study,
        pk=entry_id,
    )
    fallback = reverse("review:form", args=[study.code, entry.pk])
    try:
        query = query_raise(
            by=request.user,
            entry=entry,
            field=request.POST.get("field", WHOLE),
            text=request.POST.get("text", ""),
        )
    except (ValidationError, PermissionDenied) as exc:
        _refused(request, exc)
    else:
        messages.success(
            request,
            _("Query #%(number)d raised on %(form)s.")
            % {"number": query.pk, "form": entry_label(entry.patient, entry)},
        )
    return redirect(_next_url(request, fallback))
