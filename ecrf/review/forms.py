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
