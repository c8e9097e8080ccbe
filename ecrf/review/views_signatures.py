"""The signature pages: sign a visit, sign a casebook, the printable casebook, and what
awaits the investigator's signature.

The pages ask the permission table for their buttons and show why the data cannot be
signed yet; the services (`ecrf.review.signatures`) check it all again and decide.
Another site's patient or visit is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from ecrf.accounts.permissions import Action, actions_for, can
from ecrf.core.pagination import paginate
from ecrf.patients.models import Patient, Visit
from ecrf.patients.selectors import patient_for, study_for
from ecrf.review.casebook_print import casebook_printout
from ecrf.review.forms import SignForm
from ecrf.review.models import Signature
from ecrf.review.signatures import (
    SESSION_SIGNED,
    casebook_sign,
    casebooks_awaiting_signature,
    printed_name,
    signature_refusal,
    visit_sign,
    visits_awaiting_signature,
)

# Casebooks and visits per page of the list awaiting signature.
PAGE_SIZE = 50


def _visit(request, study, subject_code: str, code: str, repeat: int) -> Visit:
    return get_object_or_404(
        Visit.objects.visible_to(request.user).select_related(
            "patient__site", "patient__study", "patient__protocol_version"
        ),
        patient__study=study,
        patient__subject_code=subject_code,
        code=code,
        repeat=repeat,
    )


def _sign_page(request, *, study, patient, visit, title, back_url, attestation, sign):
    """The signing form and its outcome: the service's refusals become the form's errors,
    and nothing is saved."""
    if not can(request.user, Action.SIGN, patient=patient):
        raise PermissionDenied
    ask_username = not request.session.get(SESSION_SIGNED)
    form = SignForm(request.POST if request.method == "POST" else None, ask_username=ask_username)
    refusal = signature_refusal(patient=patient, visit=visit)
    if form.is_bound and form.is_valid():
        try:
            sign(
                by=request.user,
                password=form.cleaned_data["password"],
                username=form.cleaned_data["username"] if ask_username else None,
                request=request,
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc)
        else:
            messages.success(request, _("%s signed.") % title)
            return redirect(back_url)
    return render(
        request,
        "review/sign.html",
        {
            "study": study,
            "patient": patient,
            "visit": visit,
            "title": title,
            "attestation": attestation,
            "printed_name": printed_name(request.user),
            "refusal": refusal,
            "form": form,
            "back_url": back_url,
        },
        status=400 if form.is_bound else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def visit_sign_view(request, study_code: str, subject_code: str, code: str, repeat: int):
    """Sign a visit: the attestation, the signer's printed name, the password."""
    study = study_for(request.user, study_code)
    visit = _visit(request, study, subject_code, code, repeat)
    patient = visit.patient
    label = f"{visit.code} #{visit.repeat}" if visit.repeat > 1 else visit.code
    return _sign_page(
        request,
        study=study,
        patient=patient,
        visit=visit,
        title=_("Visit %(visit)s of %(patient)s") % {"visit": label, "patient": patient},
        back_url=reverse("crfs:visit", args=[study.code, patient.subject_code, code, repeat]),
        attestation=Signature.Meaning.VISIT.label,
        sign=lambda **kw: visit_sign(visit=visit, **kw),
    )


@login_required
@require_http_methods(["GET", "POST"])
def casebook_sign_view(request, study_code: str, subject_code: str):
    """Sign a patient's whole casebook."""
    study = study_for(request.user, study_code)
    patient = patient_for(request.user, study, subject_code)
    return _sign_page(
        request,
        study=study,
        patient=patient,
        visit=None,
        title=_("Casebook of %s") % patient.subject_code,
        back_url=reverse("patients:detail", args=[study.code, patient.subject_code]),
        attestation=Signature.Meaning.CASEBOOK.label,
        sign=lambda **kw: casebook_sign(patient=patient, **kw),
    )


@login_required
def casebook_print(request, study_code: str, subject_code: str):
    """The printable casebook: every visit, its forms' values with their labels, the
    adverse events and SAE reports, and the signatures (a print stylesheet, no script)."""
    study = study_for(request.user, study_code)
    patient = patient_for(request.user, study, subject_code)
    if not can(request.user, Action.VIEW, patient=patient):
        raise PermissionDenied
    return render(
        request,
        "review/casebook_print.html",
        {"study": study, "patient": patient, "book": casebook_printout(patient)},
    )


@login_required
def awaiting_signature(request, study_code: str):
    """The casebooks and visits that await the investigator's signature, at the user's
    sites (or the one `?site=` names), each list paginated: a fixed number of queries
    whatever their number."""
    study = study_for(request.user, study_code)
    visible = Patient.objects.visible_to(request.user).filter(study=study)
    site = request.GET.get("site", "")
    if site:
        visible = visible.filter(site__code=site)
    casebooks, casebooks_query = paginate(
        request,
        casebooks_awaiting_signature(study=study)
        .filter(pk__in=visible.values("pk"))
        .select_related("site")
        .order_by("site__code", "subject_code"),
        size=PAGE_SIZE,
    )
    visits, visits_query = paginate(
        request,
        visits_awaiting_signature(study=study)
        .filter(patient__in=visible.values("pk"))
        .select_related("patient__site")
        .order_by("patient__site__code", "patient__subject_code", "sequence", "repeat"),
        size=PAGE_SIZE,
        param="vpage",
    )
    return render(
        request,
        "review/awaiting_signature.html",
        {
            "study": study,
            "site": site,
            "casebooks": casebooks,
            "visits": visits,
            "casebooks_query": casebooks_query,
            "visits_query": visits_query,
            "can_sign": Action.SIGN in actions_for(request.user, study=study),
        },
    )
