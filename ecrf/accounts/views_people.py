"""The study administrators' people pages: the access review, invitations, role changes,
withdrawals and the reset of a lost two-factor device; and the invitee's page to choose a
password."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from ecrf.accounts.access import studies_visible_to
from ecrf.accounts.models import Membership, Role
from ecrf.accounts.permissions import Action, can
from ecrf.accounts.review import access_review, access_review_csv
from ecrf.accounts.services import (
    invitation_accept,
    invitation_user,
    membership_deactivate,
    membership_role_change,
    user_invite,
)
from ecrf.accounts.two_factor import two_factor_reset
from ecrf.studies.models import Site


def _managed_study(request, study_code: str):
    study = get_object_or_404(studies_visible_to(request.user), code=study_code)
    if not can(request.user, Action.MANAGE_USERS, study=study, every_site=True):
        raise PermissionDenied
    return study


class InviteForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Email"), max_length=254)
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=Role.choices)
    sites = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Sites"),
        queryset=Site.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("None for data managers and administrators: all sites."),
    )
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300)

    def __init__(self, *args, study, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sites"].queryset = Site.objects.filter(study_sites__study=study).order_by(
            "code"
        )


class ChangeForm(forms.Form):
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=Role.choices, required=False)
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300)


def _apply(form, call) -> bool:
    """Run the service; its refusals become the form's errors."""
    try:
        call()
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc.messages)
        return False
    return True


@login_required
def study_users(request, study_code: str):
    """The access review, ready to print or download as CSV, and the invitation form."""
    study = _managed_study(request, study_code)
    rows = access_review(study)
    now = timezone.localtime()
    if request.GET.get("download") == "csv":
        response = HttpResponse(
            access_review_csv(study, rows, reviewed_at=now), content_type="text/csv"
        )
        name = f"access-review-{study.code}-{now:%Y-%m-%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    invite = InviteForm(request.POST or None, study=study)
    if request.method == "POST" and invite.is_valid():
        data = invite.cleaned_data
        if _apply(
            invite,
            lambda: user_invite(
                by=request.user,
                study=study,
                email=data["email"],
                role=data["role"],
                sites=data["sites"],
                reason=data["reason"],
            ),
        ):
            messages.success(request, _("Invitation sent to %s.") % data["email"])
            return redirect("study_users", study_code=study.code)
    return render(
        request,
        "accounts/users.html",
        {
            "study": study,
            "rows": rows,
            "reviewed_at": now,
            "invite": invite,
            "change": ChangeForm(),
            "roles": Role.choices,
        },
        status=400 if invite.errors else 200,
    )


@login_required
@require_POST
def membership_change(request, study_code: str, membership_id: int, action: str):
    study = _managed_study(request, study_code)
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id)
    if membership.study_id != study.pk:
        raise Http404
    form = ChangeForm(request.POST)
    if form.is_valid():
        reason = form.cleaned_data["reason"]
        done = _("Access of %s changed.")
        if action == "two_factor_reset":
            call = lambda: two_factor_reset(  # noqa: E731
                user=membership.user, by=request.user, reason=reason, request=request
            )
            done = _("Two-factor login of %s reset: they set it up again at their next login.")
        elif action == "deactivate":
            call = lambda: membership_deactivate(  # noqa: E731
                by=request.user, membership=membership, reason=reason
            )
        else:
            call = lambda: membership_role_change(  # noqa: E731
                by=request.user,
                membership=membership,
                role=form.cleaned_data["role"],
                reason=reason,
            )
        if _apply(form, call):
            messages.success(request, done % membership.user)
            return redirect("study_users", study_code=study.code)
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else None
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)
    return redirect("study_users", study_code=study.code)


def invitation_accept_view(request, uidb64: str, token: str):
    user = invitation_user(uidb64, token)
    if user is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    form = SetPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        invitation_accept(user=user, password=form.cleaned_data["new_password1"])
        messages.success(request, _("Your password is set: log in with your email."))
        return redirect("login")
    return render(request, "accounts/invitation.html", {"form": form, "invitee": user})
