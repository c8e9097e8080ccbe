"""Writes on patients: keyword-only, atomic, audited through pghistory in the same transaction."""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.accounts.access import Role, roles_for
from ecrf.audit.context import audited
from ecrf.patients.models import Patient
from ecrf.studies.models import StudySite


def patient_create(*, study, site, by, screening_date: date, group: str = "") -> Patient:
    """Screen a new patient at a site and give them the site's next subject code.

    The site's counter row is locked (SELECT ... FOR UPDATE), so concurrent screenings
    at one site get consecutive numbers and never the same code.
    """
    if not roles_for(by, study=study, site=site) & Role.SITE_STAFF:
        raise ValidationError(
            {"site": _("You are not an investigator or coordinator at this site.")}
        )
    protocol_version = study.current_protocol
    if protocol_version is None:
        raise ValidationError(_("This study has no protocol loaded yet."))
    protocol = protocol_version.protocol
    group_codes = [g.code for g in protocol.groups]
    if group_codes and group not in group_codes:
        raise ValidationError(
            {
                "group": _("Choose one of the groups %(groups)s.")
                % {"groups": ", ".join(group_codes)}
            }
        )
    if not group_codes and group:
        raise ValidationError({"group": _("This study has no groups.")})
    if screening_date > timezone.localdate():
        raise ValidationError({"screening_date": _("The screening date cannot be in the future.")})

    with transaction.atomic(), audited(by=by, reason="patient screened"):
        try:
            study_site = StudySite.objects.select_for_update().get(
                study=study, site=site, active=True
            )
        except StudySite.DoesNotExist:
            raise ValidationError(
                {"site": _("This site is not recruiting in this study.")}
            ) from None
        study_site.last_subject_number += 1
        study_site.save(update_fields=["last_subject_number"])
        return Patient.objects.create(
            study=study,
            site=site,
            protocol_version=protocol_version,
            subject_code=f"{site.code}-{study_site.last_subject_number:03d}",
            group=group,
            screening_date=screening_date,
            created_by=by,
        )
