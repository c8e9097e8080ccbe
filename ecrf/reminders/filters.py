import django_filters
from django import forms
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from ecrf.accounts.access import study_sites_visible_to
from ecrf.core.widgets import DateInput
from ecrf.notifications.models import OutboundEmail
from ecrf.reminders.models import Kind, Reminder
from ecrf.studies.models import Site

# What a reader asks about a reminder: sent, on its way, failed, or not sent at all.
STATUS_CHOICES = [
    ("sent", _("Sent")),
    ("pending", _("Pending")),
    ("failed", _("Failed")),
    ("cancelled", _("Cancelled")),
    ("skipped", _("Skipped")),
]
_QUEUED = Reminder.Status.QUEUED
STATUS_FILTERS = {
    "sent": Q(status=_QUEUED, email__status=OutboundEmail.Status.SENT),
    "pending": Q(status=Reminder.Status.DUE)
    | Q(
        status=_QUEUED,
        email__status__in=[OutboundEmail.Status.PENDING, OutboundEmail.Status.SENDING],
    ),
    "failed": Q(status=_QUEUED, email__status=OutboundEmail.Status.FAILED),
    "cancelled": Q(status=Reminder.Status.CANCELLED)
    | Q(status=_QUEUED, email__status=OutboundEmail.Status.CANCELLED),
    "skipped": Q(status=Reminder.Status.SKIPPED),
}


def _select():
    return forms.Select(attrs={"class": "form-select"})


class ReminderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=STATUS_CHOICES, label=_("Status"), method="filter_status", widget=_select()
    )
    kind = django_filters.ChoiceFilter(choices=Kind.choices, label=_("Kind"), widget=_select())
    site = django_filters.ModelChoiceFilter(
        queryset=Site.objects.none(),
        label=_("Site"),
        to_field_name="code",
        field_name="site",
        widget=_select(),
    )
    subject = django_filters.CharFilter(
        field_name="patient__subject_code",
        lookup_expr="icontains",
        label=_("Subject code"),
        widget=forms.TextInput(attrs={"class": "form-control", "type": "search"}),
    )
    due_from = django_filters.DateFilter(
        field_name="due_on",
        lookup_expr="gte",
        label=_("Due from"),
        widget=DateInput(attrs={"class": "form-control"}),
    )
    due_to = django_filters.DateFilter(
        field_name="due_on",
        lookup_expr="lte",
        label=_("Due until"),
        widget=DateInput(attrs={"class": "form-control"}),
    )

    class Meta:
        model = Reminder
        fields = ["status", "kind", "site", "subject", "due_from", "due_to"]

    def __init__(self, *args, study, user, **kwargs):
        super().__init__(*args, **kwargs)
        sites = study_sites_visible_to(user).filter(study=study).values("site_id")
        self.filters["site"].queryset = Site.objects.filter(pk__in=sites).order_by("code")

    @property
    def form(self):
        form = super().form
        form.fields["site"].label_from_instance = lambda site: f"{site.code} · {site.city}"
        return form

    def filter_status(self, queryset, name, value):
        return queryset.filter(STATUS_FILTERS[value])

    @staticmethod
    def status_counts(queryset) -> dict[str, int]:
        """How many reminders are in each status (one query)."""
        return queryset.aggregate(
            **{key: Count("pk", filter=condition) for key, condition in STATUS_FILTERS.items()}
        )
