import django_filters
from django.utils.translation import gettext_lazy as _

from ecrf.patients.models import Patient


class PatientFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        field_name="subject_code", lookup_expr="icontains", label=_("Subject code")
    )
    status = django_filters.ChoiceFilter(choices=Patient.Status.choices, label=_("Status"))
    site = django_filters.ModelChoiceFilter(
        queryset=None, label=_("Site"), to_field_name="code", field_name="site"
    )

    class Meta:
        model = Patient
        fields = ["q", "status", "site"]

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the sites the user may see are offered; another site's code is an invalid choice.
        self.filters["site"].queryset = sites
