"""Emergency unblinding: the patient's investigator learns the arm, the sponsor is told.

The arm is returned to the caller for display on one response and stored nowhere else:
not on the unblinding row, not in the audit context, not in the sponsor's email (which
goes to people who may be blinded themselves).
"""

from __future__ import annotations

from datetime import UTC

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from ecrf.accounts.permissions import Action, require
from ecrf.accounts.reauth import reauthenticate
from ecrf.audit.context import audited
from ecrf.notifications.services import email_queue
from ecrf.patients.models import Allocation, Unblinding

EMAIL_KIND = "emergency_unblinding"


def is_unblinded(patient) -> bool:
    """Whether the patient's allocation has been disclosed by an emergency unblinding."""
    return Unblinding.objects.filter(patient=patient).exists()


def emergency_unblind(*, patient, by, reason: str, password: str, request=None) -> str:
    """Disclose the patient's arm to their investigator; returns the arm code.

    Needs the medical reason and the investigator's password, re-entered through
    `reauthenticate` (a wrong one counts towards the lockout; `request`, from the screen,
    gives the address recorded and the session to end at the limit). The unblinding is
    recorded (the patient is then flagged unblinded), audited with the reason, and the
    sponsor's safety contacts are emailed once the transaction commits.
    """
    require(by, Action.UNBLIND, patient=patient)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give the medical reason for unblinding.")})
    allocation = Allocation.objects.filter(patient=patient).only("arm").first()
    if allocation is None:
        raise ValidationError(
            _("Patient %(code)s has not been randomised: there is no treatment to disclose.")
            % {"code": patient.subject_code}
        )
    # Once the rest is valid, and outside the transaction: a wrong password's record and
    # its count towards the lockout must not roll back with the refusal.
    reauthenticate(request, by, password)
    protocol_version = patient.study.current_protocol or patient.protocol_version
    contacts = protocol_version.protocol.safety.sponsor_safety_contacts

    with transaction.atomic(), audited(by=by, reason=f"emergency unblinding: {reason}"):
        unblinding = Unblinding.objects.create(patient=patient, by=by, reason=reason)
        subject, body = _sponsor_email(unblinding)
        email_queue(
            dedupe_key=f"unblinding:{unblinding.pk}",
            kind=EMAIL_KIND,
            recipients=contacts,
            subject=subject,
            body=body,
        )
    return allocation.arm


def _sponsor_email(unblinding: Unblinding) -> tuple[str, str]:
    # In English whatever the investigator's language: it goes to the sponsor. It never
    # names the arm: the recipients may be blinded.
    patient = unblinding.patient
    study, site = patient.study, patient.site
    at = unblinding.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    subject = f"[{study.code}] Emergency unblinding of patient {patient.subject_code}"
    body = "\n".join(
        [
            "An emergency unblinding was performed in the eCRF.",
            "",
            f"Study: {study.code} ({study.acronym})",
            f"Site: {site.code} - {site.name}",
            f"Patient: {patient.subject_code}",
            f"Unblinded by: {unblinding.by.get_full_name() or unblinding.by.username}"
            f" ({unblinding.by.username})",
            f"Date and time: {at}",
            f"Reason: {unblinding.reason}",
            "",
            "The allocation was disclosed to the investigator only. This message does not",
            "state the treatment arm; unblinded staff can read it in the eCRF.",
        ]
    )
    return subject, body
