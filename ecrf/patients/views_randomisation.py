"""Allocation lists and emergency unblinding screens.

Blinded users see kit numbers and counts of used and free slots, never an arm nor a
count per arm. Generating a list is for unblinded data managers and administrators;
unblinding is for the patient's investigator, and the arm it discloses appears on that
one response only (not stored in the session, never cached).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from ecrf.accounts.access import can_see_allocation, studies_visible_to, study_sites_visible_to
from ecrf.accounts.permissions import Action, can
from ecrf.patients.models import Allocation, AllocationList, Patient
from ecrf.patients.randomisation import (
    MAX_LIST_SIZE,
    MAX_SEED,
    allocation_list_generate,
    can_manage_allocation_lists,
)
from ecrf.patients.unblinding import emergency_unblind
from ecrf.studies.models import Site, Study


class AllocationListGenerateForm(forms.Form):
    site = forms.ModelChoiceField(queryset=None, label=gettext_lazy("Site"), to_field_name="code")
    size = forms.IntegerField(
        label=gettext_lazy("Number of slots"),
        min_value=1,
        max_value=MAX_LIST_SIZE,
        initial=40,
        help_text=gettext_lazy("At least this many: the list ends with a whole block."),
    )
    seed = forms.IntegerField(
        label=gettext_lazy("Seed"),
        required=False,
        min_value=0,
        max_value=MAX_SEED,
        help_text=gettext_lazy(
            "Leave empty for a random seed (recommended). The seed is recorded with the list."
        ),
    )

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites


class UnblindForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Medical reason for unblinding"),
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=2000,
        help_text=gettext_lazy("Sent to the sponsor and kept in the audit trail."),
    )
    password = forms.CharField(
        label=gettext_lazy("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def _randomised_study(request, study_code: str) -> Study:
    study = get_object_or_404(studies_visible_to(request.user), code=study_code)
    protocol_version = study.current_protocol
    if protocol_version is None or protocol_version.protocol.randomisation is None:
        raise Http404(_("This study is not randomised."))
    return study


def _site_rows(user, study: Study, arms) -> list[dict]:
    """Per visible site: its lists and its slots used and free, and used per arm (`arms`
    is empty for blinded users)."""
    study_sites = list(study_sites_visible_to(user).filter(study=study).select_related("site"))
    counts = {
        row["site_id"]: row
        for row in Allocation.objects.filter(
            study=study, site_id__in=[s.site_id for s in study_sites]
        )
        .values("site_id")
        .annotate(total=Count("id"), used=Count("patient"))
    }
    per_arm: dict[int, dict[str, int]] = {}
    if arms:
        for row in (
            Allocation.objects.filter(study=study, patient__isnull=False)
            .values("site_id", "arm")
            .annotate(n=Count("id"))
        ):
            per_arm.setdefault(row["site_id"], {})[row["arm"]] = row["n"]
    lists: dict[int, list[AllocationList]] = {}
    for allocation_list in (
        AllocationList.objects.visible_to(user)
        .filter(study=study)
        .select_related("created_by")
        .annotate(total=Count("slots"), used=Count("slots", filter=Q(slots__patient__isnull=False)))
        .order_by("created_at")
    ):
        lists.setdefault(allocation_list.site_id, []).append(allocation_list)
    rows = []
    for study_site in study_sites:
        count = counts.get(study_site.site_id, {"total": 0, "used": 0})
        rows.append(
            {
                "site": study_site.site,
                "total": count["total"],
                "used": count["used"],
                "free": count["total"] - count["used"],
                "per_arm": [per_arm.get(study_site.site_id, {}).get(arm.code, 0) for arm in arms],
                "lists": lists.get(study_site.site_id, []),
            }
        )
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def allocation_lists(request, study_code: str):
    study = _randomised_study(request, study_code)
    unblinded = can_see_allocation(request.user, study=study)
    can_manage = can_manage_allocation_lists(request.user, study=study)
    if request.method == "POST" and not can_manage:
        raise PermissionDenied
    form = None
    if can_manage:
        sites = Site.objects.filter(study_sites__study=study).order_by("code")
        form = AllocationListGenerateForm(
            request.POST if request.method == "POST" else None, sites=sites
        )
        if request.method == "POST" and form.is_valid():
            site = form.cleaned_data["site"]
            try:
                allocation_list = allocation_list_generate(
                    study=study,
                    site=site,
                    size=form.cleaned_data["size"],
                    seed=form.cleaned_data["seed"],
                    by=request.user,
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(
                    request,
                    _("Allocation list generated for site %(site)s: %(n)d slots.")
                    % {"site": site.code, "n": allocation_list.slots.count()},
                )
                return redirect("patients:allocation_lists", study.code)
    arms = study.current_protocol.protocol.arms if unblinded else ()
    return render(
        request,
        "patients/allocation_lists.html",
        {
            "study": study,
            "rows": _site_rows(request.user, study, arms),
            "unblinded": unblinded,
            "arms": arms,
            "form": form,
        },
    )


@login_required
def allocation_list_detail(request, study_code: str, list_id: int):
    study = _randomised_study(request, study_code)
    allocation_list = get_object_or_404(
        AllocationList.objects.visible_to(request.user).select_related("site", "created_by"),
        study=study,
        pk=list_id,
    )
    if not can_see_allocation(request.user, study=study):
        raise PermissionDenied
    labels = {arm.code: arm.label for arm in study.current_protocol.protocol.arms}
    slots = allocation_list.slots.select_related("patient", "allocated_by").order_by("sequence")
    return render(
        request,
        "patients/allocation_list_detail.html",
        {"study": study, "allocation_list": allocation_list, "slots": slots, "labels": labels},
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def patient_unblind(request, study_code: str, subject_code: str):
    study = get_object_or_404(studies_visible_to(request.user), code=study_code)
    patient = get_object_or_404(
        Patient.objects.visible_to(request.user).select_related("study", "site"),
        study=study,
        subject_code=subject_code,
    )
    if not can(request.user, Action.UNBLIND, patient=patient):
        raise PermissionDenied
    randomised = Allocation.objects.filter(patient=patient).exists()
    form = UnblindForm(request.POST if request.method == "POST" else None)
    arm = None
    if request.method == "POST" and randomised and form.is_valid():
        try:
            code = emergency_unblind(
                patient=patient,
                by=request.user,
                reason=form.cleaned_data["reason"],
                password=form.cleaned_data["password"],
                request=request,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            labels = {a.code: a.label for a in study.current_protocol.protocol.arms}
            arm = {"code": code, "label": labels.get(code, code)}
    return render(
        request,
        "patients/unblind.html",
        {"study": study, "patient": patient, "randomised": randomised, "form": form, "arm": arm},
    )
