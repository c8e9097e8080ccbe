from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrf.core.widgets import DateInput
from ecrf.patients.models import Patient


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
        widget=DateInput(),
        help_text=_("The day the patient was first seen for this study."),
    )

    def __init__(self, *args, sites, groups, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites
        if sites.count() == 1:
            self.fields["site"].initial = sites.first().code
            self.fields["site"].empty_label = None  # the one choice, nothing to pick
        if groups:
            self.fields["group"].choices = [("", "---------"), *groups]
            self.fields["group"].required = True
        else:
            del self.fields["group"]
        self.fields["screening_date"].initial = timezone.localdate()


class EnrolForm(forms.Form):
    day0_date = forms.DateField(
        label=_("Inclusion date (day 0)"),
        widget=DateInput(),
        help_text=_("Visit windows count from this date."),
    )


class PlanInclusionForm(forms.Form):
    """The planned inclusion date of a patient in screening; left empty, it clears the plan."""

    planned_day0_date = forms.DateField(
        label=_("Planned inclusion date"),
        required=False,
        widget=DateInput(),
        help_text=_("Reminders of what must be done before inclusion count from this date."),
    )


class ScreenFailForm(forms.Form):
    reasons = forms.CharField(
        label=_("Reasons for the screen failure"), widget=forms.Textarea(attrs={"rows": 2})
    )


class EndOfStudyForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Outcome"),
        choices=[
            (Patient.Status.COMPLETED, _("Completed the study")),
            (Patient.Status.WITHDRAWN, _("Withdrawn")),
        ],
    )
    end_date = forms.DateField(label=_("Date"), widget=DateInput())
    reason = forms.CharField(label=_("Reason"), max_length=300)
