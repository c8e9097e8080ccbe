"""The review's forms: freezing, locking and lifting data."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from ecrf.patients.models import DataLock

REASON_HELP = _("At least 10 characters; kept in the audit trail with your name.")


class LockForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Freeze or lock"),
        choices=[
            (DataLock.Kind.FREEZE, _("Freeze: data cannot change; SDV and queries go on")),
            (DataLock.Kind.LOCK, _("Lock: nothing changes, review included")),
        ],
        widget=forms.RadioSelect,
        initial=DataLock.Kind.FREEZE,
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=REASON_HELP,
    )


class SiteLockForm(LockForm):
    site = forms.ModelChoiceField(label=_("Site"), queryset=None, to_field_name="code")

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites
        self.order_fields(["site", "kind", "reason"])


class UnlockForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for lifting"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=REASON_HELP,
    )


class SignForm(forms.Form):
    """The signature's re-authentication: the username on the session's first signing (the
    page leaves the field out afterwards), and the password each time."""

    username = forms.CharField(label=_("Username"), max_length=150, required=False)
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Your signature is your password: the one you sign in with."),
    )

    def __init__(self, *args, ask_username: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not ask_username:
            del self.fields["username"]


class StudyUnblindForm(forms.Form):
    """The study unblinding: the reason, the administrator's password and a confirmation
    that says in words what happens."""

    reason = forms.CharField(
        label=_("Reason for unblinding the study"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=REASON_HELP,
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("The password you sign in with."),
    )
    confirm = forms.BooleanField(
        label=_("I understand that every member of the study will see the treatment arms."),
        error_messages={
            "required": _("Confirmation: tick the box; unblinding the study cannot be undone.")
        },
    )
