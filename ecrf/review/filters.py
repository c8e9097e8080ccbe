"""The filters of the review's lists: overdue visits and protocol deviations."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _

from ecrf.patients.models import Deviation, Visit


class _SiteFilter(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(
        queryset=None, label=_("Site"), to_field_name="code", field_name="patient__site"
    )
    q = django_filters.CharFilter(
        field_name="patient__subject_code", lookup_expr="icontains", label=_("Subject code")
    )

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the sites the user may see are offered; another site's code is an invalid choice.
        self.filters["site"].queryset = sites


class OverdueVisitFilter(_SiteFilter):
    class Meta:
        model = Visit
        fields = ["site", "q"]


class DeviationFilter(_SiteFilter):
    state = django_filters.ChoiceFilter(
        choices=[("open", _("Standing")), ("closed", _("Closed"))],
        label=_("State"),
        method="filter_state",
        empty_label=_("Standing and closed"),
    )
    category = django_filters.ChoiceFilter(choices=Deviation.Category.choices, label=_("Category"))

    class Meta:
        model = Deviation
        fields = ["site", "q", "state", "category"]

    def filter_state(self, queryset, name, value):
        return queryset.filter(closed_at__isnull=value == "open")
