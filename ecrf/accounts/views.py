"""The locked accounts an administrator may unlock, each with a reason."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from ecrf.accounts.lockout import locked_accounts_for
from ecrf.accounts.models import Membership, User
from ecrf.accounts.permissions import Action, roles_allowed
from ecrf.accounts.services import account_unlock


class UnlockForm(forms.Form):
    username = forms.CharField(widget=forms.HiddenInput, max_length=150)
    reason = forms.CharField(
        label=gettext_lazy("Reason for unlocking"),
        max_length=300,
        help_text=gettext_lazy(
            "How you made sure it is them, for example: called back on their ward phone."
        ),
    )


def _may_unlock_someone(user) -> bool:
    if user.is_superuser:
        return True
    return (
        Membership.objects.held_by(user.pk)
        .filter(role__in=roles_allowed(Action.UNLOCK_ACCOUNT), site__isnull=True)
        .exists()
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def locked_accounts(request):
    if not _may_unlock_someone(request.user):
        raise PermissionDenied
    form = UnlockForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        user = get_object_or_404(User, username=form.cleaned_data["username"])
        try:
            account_unlock(user=user, by=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request,
                _("%(username)s is unlocked and may sign in again.")
                % {"username": user.get_username()},
            )
            return redirect("locked_accounts")
    accounts = locked_accounts_for(request.user)
    status = 400 if form.is_bound else 200
    return render(
        request,
        "accounts/locked.html",
        {"accounts": accounts, "form": form, "posted": form.data.get("username", "")},
        status=status,
    )
