"""The export screen's form: what to export, checked by the export service itself.

The form only turns what was typed into `export_prepare`'s arguments; the service decides
(formats, sites, forms, cut-off, blinding, audit period) and its refusals are shown on
their fields, so the screen and the command refuse the same things in the same words.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ecrf.accounts.access import can_see_allocation, scope
from ecrf.accounts.permissions import Action, roles_allowed
from ecrf.exports.dictionary import exportable_forms
from ecrf.exports.services import FORMATS, PLANNED_FORMATS, export_prepare
from ecrf.studies.models import Site

FORMAT_LABELS = {
    "csv": gettext_lazy("CSV: a file per form, and the data dictionary"),
    "xlsx": gettext_lazy("Excel: one workbook, a sheet per form"),
    "sas": gettext_lazy("SAS transport files (.xpt) and formats.sas"),
    "stata": gettext_lazy("Stata (.dta) with value labels"),
    "spss": gettext_lazy("SPSS (.sav) with value labels"),
    "odm": gettext_lazy("CDISC ODM 1.3.2 snapshot"),
    "odm-audit": gettext_lazy("CDISC ODM 1.3.2 audit trail (transactional)"),
    "sdtm": gettext_lazy("SDTM-ready datasets (.xpt and .csv)"),
    "audit": gettext_lazy("The study's audit trail (CSV)"),
}


class _Codes(forms.MultipleChoiceField):
    """Codes the service checks: an unknown one reaches it and is refused in its words
    (naming the code and what is allowed), not Django's generic "valid choice"."""

    def validate(self, value):
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")


class LocalDateTimeField(forms.DateTimeField):
    """A date and time typed in the site's time zone (`datetime-local`), made aware in it."""

    input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]

    def __init__(self, *, zone, **kwargs):
        self.zone = zone
        kwargs.setdefault(
            "widget",
            forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        )
        super().__init__(**kwargs)

    def to_python(self, value):
        with timezone.override(self.zone):
            result = super().to_python(value)
        if result is None:
            return None
        try:
            # In the site's zone whatever offset was typed (the API takes ISO 8601): an
            # offset PostgreSQL does not store (beyond 15:59) would fail the job's save, and
            # an instant UTC or the server's zone cannot show (year 1, year 9999) its
            # display; both are refused here, as an invalid date.
            timezone.localtime(result, UTC)
            timezone.localtime(result)
            return timezone.localtime(result, self.zone)
        except OverflowError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None

    def prepare_value(self, value):
        if hasattr(value, "tzinfo") and value.tzinfo is not None:
            return timezone.localtime(value, self.zone)
        return value


def study_zone(study) -> zoneinfo.ZoneInfo:
    """The time zone the study's dates are typed in: its sites' when they share one, else
    the server's (Europe/Paris)."""
    zones = set(Site.objects.filter(study_sites__study=study).values_list("timezone", flat=True))
    return zoneinfo.ZoneInfo(zones.pop() if len(zones) == 1 else settings.TIME_ZONE)


def export_sites_for(user, study) -> list[Site]:
    """The study's sites where the user may export (every one for a data manager or an
    administrator)."""
    return list(
        Site.objects.filter(
            scope(user).site_filter(
                "study_sites__study_id", "id", roles=roles_allowed(Action.EXPORT)
            ),
            study_sites__study=study,
        )
        .distinct()
        .order_by("code")
    )


# The service's argument names are the form's field names, so its refusals land on them.
FIELDS = ("formats", "sites", "forms", "as_of", "unblinded", "audit_from", "audit_to")


class ExportForm(forms.Form):
    formats = _Codes(
        label=gettext_lazy("Formats"),
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Each format is a folder of the zip."),
    )
    sites = _Codes(
        label=gettext_lazy("Sites"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("None ticked: every site."),
    )
    unblinded = forms.BooleanField(
        label=gettext_lazy("Unblinded: add the allocation (arms)"),
        required=False,
        help_text=gettext_lazy("The zip, its manifest and the audit trail then say UNBLINDED."),
    )
    initials = forms.BooleanField(
        label=gettext_lazy("With the patients' initials"),
        required=False,
        help_text=gettext_lazy("A near-identifier, left out unless you tick this."),
    )

    def __init__(self, *args, user, study, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.study = user, study
        self.zone = study_zone(study)
        zone_name = str(self.zone)
        self.fields["as_of"] = LocalDateTimeField(
            zone=self.zone,
            label=_("Cut-off"),
            required=False,
            help_text=_("The data as they were at this instant (%(zone)s time); empty: now.")
            % {"zone": zone_name},
        )
        self.fields["audit_from"] = LocalDateTimeField(
            zone=self.zone,
            label=_("Audit trail from"),
            required=False,
            help_text=_("For the audit trail formats (%(zone)s time); empty: its start.")
            % {"zone": zone_name},
        )
        self.fields["audit_to"] = LocalDateTimeField(
            zone=self.zone,
            label=_("Audit trail until"),
            required=False,
            help_text=_("Empty: until now."),
        )
        # Named as the service's argument; declared here, not on the class, where the name
        # would hide the django.forms module.
        self.fields["forms"] = _Codes(
            label=_("Forms"),
            required=False,
            widget=forms.CheckboxSelectMultiple,
            help_text=_("None ticked: every form."),
        )
        self.fields["formats"].choices = [
            (fmt, FORMAT_LABELS.get(fmt, fmt)) for fmt in (*FORMATS, *PLANNED_FORMATS)
        ]
        self.fields["formats"].initial = [FORMATS[0]] if FORMATS else []
        self.my_sites = export_sites_for(user, study)
        self.fields["sites"].choices = [
            (site.code, f"{site.code} · {site.name}") for site in self.my_sites
        ]
        protocols = [version.protocol for version in study.protocol_versions.order_by("loaded_at")]
        labels = {form.code: form.label for protocol in protocols for form in protocol.forms}
        self.fields["forms"].choices = [
            (code, labels.get(code, code)) for code in exportable_forms(protocols, study=study)
        ]
        self.can_unblind = can_see_allocation(user, study=study)
        self.export_request = None
        # The service's PermissionDenied, shown as a message; kept for a caller that answers
        # it with a refusal of its own (a 403).
        self.denied = None

    def format_options(self):
        """(code, label, checked, supported) for the template: the planned ones disabled."""
        chosen = set(
            self.data.getlist("formats") if self.is_bound else self.fields["formats"].initial
        )
        return [
            (fmt, FORMAT_LABELS.get(fmt, fmt), fmt in chosen, fmt in FORMATS)
            for fmt in (*FORMATS, *PLANNED_FORMATS)
        ]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        mine = {site.code for site in self.my_sites}
        others = [code for code in data.get("sites") or [] if code not in mine]
        study_sites = set(
            Site.objects.filter(study_sites__study=self.study).values_list("code", flat=True)
        )
        for code in others:
            if code in study_sites:
                # A site of the study, not one of the user's: refused by name here, where
                # the user's own sites are known (the service would say "your role").
                self.add_error(
                    "sites",
                    _("Site: you may not export %(site)s's data; choose among %(allowed)s.")
                    % {"site": code, "allowed": ", ".join(sorted(mine)) or "—"},
                )
                return data
        # A user who may export at some sites only names them: "every site" would be refused.
        sites = data.get("sites") or None
        if sites is None and self.my_sites and len(self.my_sites) < len(study_sites):
            sites = sorted(mine)
        try:
            self.export_request = export_prepare(
                study=self.study,
                by=self.user,
                formats=data.get("formats") or (),
                sites=sites,
                forms=data.get("forms") or None,
                as_of=data.get("as_of"),
                unblinded=bool(data.get("unblinded")),
                initials=bool(data.get("initials")),
                audit_from=data.get("audit_from"),
                audit_to=data.get("audit_to"),
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for key, errors in exc.error_dict.items():
                    self.add_error(key if key in self.fields else None, errors)
            else:
                self.add_error(None, exc)
        except PermissionDenied as exc:
            self.denied = exc
            self.add_error(None, str(exc))
        return data
