from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class PatientCreateForm(forms.Form):
    site = forms.ModelChoiceField(
        queryset=None,
        label=_("Site"),
        to_field_name="code",
        help_text=_("Sites where you are an investigator or coordinator."),
    )
    group = forms.ChoiceField(label=_("Group"), required=False)
    screening_date = forms.DateField(
        label=_("Screening date"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The day the patient was first seen for this study."),
    )

    def __init__(self, *args, sites, groups, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites
        if sites.count() == 1:
            self.fields["site"].initial = sites.first().code
        if groups:
            self.fields["group"].choices = [("", "---------"), *groups]
            self.fields["group"].required = True
        else:
            del self.fields["group"]
        self.fields["screening_date"].initial = timezone.localdate()
