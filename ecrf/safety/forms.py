from __future__ import annotations

from django import forms
from django.forms.models import fields_for_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrf.core.widgets import DateInput, DateTimeInput
from ecrf.safety.clock import local_instant
from ecrf.safety.models import SAE_CRITERIA, AdverseEvent

YES_NO = [("yes", _("Yes")), ("no", _("No"))]


def _yes_no(label, help_text="", **attrs) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label,
        choices=YES_NO,
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect(attrs=attrs),
        help_text=help_text,
    )


class SiteTimeMixin:
    """aware_date + aware_time typed at the site become `aware_at`, a UTC instant (and
    each pair of SITE_TIMES likewise)."""

    zone: str
    SITE_TIMES = (("aware_date", "aware_time", "aware_at"),)

    def clean(self):
        data = super().clean()
        for date_field, time_field, instant in self.SITE_TIMES:
            if not self.wants(instant):
                continue
            day, at = data.get(date_field), data.get(time_field)
            if day is not None and at is not None:
                try:
                    data[instant] = local_instant(day, at, self.zone)
                except ValueError as exc:
                    self.add_error(time_field, str(exc))
            elif (day is None) != (at is None) and not {date_field, time_field} & set(self.errors):
                # A moment is both or neither (a missing required one has said so already).
                missing = time_field if at is None else date_field
                self.add_error(missing, _("Give both the date and the time."))
        return data

    def wants(self, instant: str) -> bool:
        """Whether the moment is asked (its fields shown) with these answers."""
        return True


class AdverseEventForm(SiteTimeMixin, forms.Form):
    """The adverse event as the investigator types it; the rules live in the service.

    "Aware at" is typed as a date and a wall-clock time at the site and turned into UTC
    with the site's zone, so that 24 h after it is exactly 24 h later. So is the moment
    the site became aware that the event is serious, which starts the SAE clock: shown
    for a serious answer only, empty meaning "serious from the moment it was known",
    except when a recorded non-serious event turns serious (`was_serious` False), where
    it defaults to now and the service requires it.
    """

    SITE_TIMES = (
        ("aware_date", "aware_time", "aware_at"),
        ("serious_aware_date", "serious_aware_time", "serious_aware_at"),
    )

    MODEL_FIELDS = (
        "term",
        "meddra_llt_code",
        "meddra_pt_code",
        "onset_date",
        "end_date",
        "ongoing",
        "ctcae_grade",
    )
    AFTER_FIELDS = ("relatedness", "action_taken", "outcome", "death_date")

    def __init__(
        self, *args, zone: str, editing: bool = False, was_serious: bool | None = None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.zone = zone
        model_fields = fields_for_model(
            AdverseEvent,
            fields=[*self.MODEL_FIELDS, *SAE_CRITERIA, *self.AFTER_FIELDS],
            widgets={
                "end_date": DateInput(),
                "death_date": DateInput(attrs={"data-show-if": "outcome=fatal"}),
                "onset_date": forms.TextInput(attrs={"placeholder": _("YYYY-MM-DD or YYYY-MM")}),
                **{
                    name: forms.CheckboxInput(attrs={"data-show-if": "serious=yes"})
                    for name in SAE_CRITERIA
                },
            },
        )
        for name in self.MODEL_FIELDS:
            self.fields[name] = model_fields[name]
        self.fields["serious"] = _yes_no(
            _("Serious"),
            _("Serious (ICH E2A) is not severe: tick the criteria that apply."),
        )
        for name in SAE_CRITERIA:
            self.fields[name] = model_fields[name]
        self.fields["expected"] = _yes_no(
            _("Expected"), _("Listed in the reference safety information (brochure).")
        )
        for name in self.AFTER_FIELDS:
            self.fields[name] = model_fields[name]
        self.fields["aware_date"] = forms.DateField(label=_("Site aware on"), widget=DateInput())
        self.fields["aware_time"] = forms.TimeField(
            label=_("at (site time, %(zone)s)") % {"zone": zone},
            widget=forms.TimeInput(attrs={"type": "time"}),
            help_text=_("When the site learned of the event."),
        )
        turning_serious = editing and was_serious is False
        self.fields["serious_aware_date"] = forms.DateField(
            label=_("When did the site become aware that the event is serious?"),
            required=False,
            widget=DateInput(attrs={"data-show-if": "serious=yes"}),
        )
        self.fields["serious_aware_time"] = forms.TimeField(
            label=_("at (site time, %(zone)s)") % {"zone": zone},
            required=False,
            widget=forms.TimeInput(attrs={"type": "time", "data-show-if": "serious=yes"}),
            help_text=(
                _("The initial SAE report is due 24 h after this moment.")
                if turning_serious
                else _(
                    "The initial SAE report is due 24 h after this moment. Leave it empty "
                    "when the event was serious from the moment the site learned of it."
                )
            ),
        )
        if turning_serious and not self.is_bound:
            now = timezone.localtime(timezone.now(), _zone(zone))
            self.fields["serious_aware_date"].initial = now.date()
            self.fields["serious_aware_time"].initial = now.strftime("%H:%M")
        if editing:
            self.fields["version"] = forms.IntegerField(widget=forms.HiddenInput)
            self.fields["reason"] = forms.CharField(
                label=_("Reason for change"),
                max_length=300,
                help_text=_("Kept in the audit trail with the old and new values."),
            )
        elif not self.is_bound:
            now = timezone.localtime(timezone.now(), _zone(zone))
            self.fields["aware_date"].initial = now.date()
            self.fields["aware_time"].initial = now.strftime("%H:%M")

    def wants(self, instant: str) -> bool:
        # The moment the event became serious is hidden, and not an answer, unless serious.
        return instant != "serious_aware_at" or bool(self.cleaned_data.get("serious"))

    def values(self) -> dict:
        """The cleaned answers as the service's field -> value mapping."""
        data = self.cleaned_data
        names = [*self.MODEL_FIELDS, "serious", *SAE_CRITERIA, "expected", *self.AFTER_FIELDS]
        values = {name: data.get(name) for name in names}
        values["aware_at"] = data.get("aware_at")
        values["serious_aware_at"] = data.get("serious_aware_at")
        values["ctcae_grade"] = int(values["ctcae_grade"]) if values["ctcae_grade"] else None
        if not values["serious"]:
            # Hidden criteria and moment of a non-serious event are not answers.
            values.update(dict.fromkeys(SAE_CRITERIA, False))
            values["serious_aware_at"] = None
        return values

    def add_service_errors(self, exc) -> None:
        """Show a service's ValidationError on the fields it names."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        targets = {instant: date_field for date_field, _time, instant in self.SITE_TIMES}
        for field, errors in exc.error_dict.items():
            target = targets.get(field, field)
            self.add_error(target if target in self.fields else None, errors)

    @classmethod
    def initial_from(cls, event: AdverseEvent, zone: str) -> dict:
        initial = {name: getattr(event, name) for name in (*cls.MODEL_FIELDS, *cls.AFTER_FIELDS)}
        initial.update({name: getattr(event, name) for name in SAE_CRITERIA})
        initial["serious"] = "yes" if event.serious else "no"
        initial["expected"] = "yes" if event.expected else "no"
        local = timezone.localtime(event.aware_at, _zone(zone))
        initial["aware_date"], initial["aware_time"] = local.date(), local.strftime("%H:%M")
        if event.serious and event.serious_aware_at != event.aware_at:
            # Left empty when it is the event's awareness, so that correcting that one
            # moves the clock with it.
            local = timezone.localtime(event.serious_aware_at, _zone(zone))
            initial["serious_aware_date"] = local.date()
            initial["serious_aware_time"] = local.strftime("%H:%M")
        initial["version"] = event.version
        return initial


def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


class PasswordForm(forms.Form):
    password = forms.CharField(
        label=_("Your password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Submitting is your signature: enter your password again."),
    )


class InitialReportForm(PasswordForm):
    narrative = forms.CharField(
        label=_("Narrative"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("What happened, the treatment given, the course so far."),
    )
    field_order = ["narrative", "password"]


class FollowUpForm(SiteTimeMixin, InitialReportForm):
    aware_date = forms.DateField(label=_("New information received on"), widget=DateInput())
    aware_time = forms.TimeField(
        label=_("at (site time)"), widget=forms.TimeInput(attrs={"type": "time"})
    )
    field_order = ["narrative", "aware_date", "aware_time", "password"]

    def __init__(self, *args, zone: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone
        if not self.is_bound:
            now = timezone.localtime(timezone.now(), _zone(zone))
            self.fields["aware_date"].initial = now.date()
            self.fields["aware_time"].initial = now.strftime("%H:%M")


class AcknowledgeForm(forms.Form):
    sponsor_relatedness = forms.ChoiceField(
        label=_("Sponsor's relatedness assessment"),
        choices=[("", _("Same as the investigator")), *AdverseEvent.Relatedness.choices],
        required=False,
        help_text=_("Both opinions are kept; the event is reported as related if either is."),
    )


class AuthorityReportedForm(forms.Form):
    at = forms.DateTimeField(
        label=_("Reported to the authorities at"),
        widget=DateTimeInput(),
    )


class DismissAlertForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for not recording an adverse event"),
        max_length=300,
        help_text=_("For example: known, stable, not clinically significant."),
    )
