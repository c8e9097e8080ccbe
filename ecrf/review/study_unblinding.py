"""Unblinding a whole study: once, at the end, after the database lock.

The rule [D]: a study is unblinded only while its study-wide lock (`DataLock` at the study
level, kind lock: the database lock placed by the data manager) is in place, so that no
datum can change once the arms are known. The study's administrator asks for it with their
password (`reauthenticate`, counted like a failed login) and a reason; the unblinding is
recorded (`StudyUnblinding`), audited (the study's `blinded` flag turned off in the audit
context, with the reason), and the sponsor's safety contacts are emailed once the
transaction commits. From then on every member of the study sees the arms
(`can_see_allocation` reads `Study.blinded`).

No form turns `blinded` off: the field is not editable (the admin shows it read-only) and
a protocol file cannot change it on a loaded study.
"""

from __future__ import annotations

from datetime import UTC

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from ecrf.accounts.permissions import Action, require
from ecrf.accounts.reauth import reauthenticate
from ecrf.audit.context import audited
from ecrf.core.reasons import reason_problem
from ecrf.notifications.services import email_queue
from ecrf.patients.models import DataLock
from ecrf.studies.models import Study, StudyUnblinding

EMAIL_KIND = "study_unblinding"


def database_lock(study) -> DataLock | None:
    """The study's database lock in place (the study-wide lock), or None."""
    return (
        DataLock.objects.active()
        .filter(study=study, level=DataLock.Level.STUDY, kind=DataLock.Kind.LOCK)
        .order_by("placed_at", "pk")
        .first()
    )


def study_unblind(*, study, by, password: str, reason: str, request=None) -> StudyUnblinding:
    """Unblind the whole study for every member; needs the database lock, the administrator's
    password and a reason. Refused (ValidationError on "password", "reason" or the whole
    form) otherwise; PermissionDenied unless `by` is an administrator of the study."""
    require(by, Action.UNBLIND_STUDY, study=study, every_site=True)
    reason = " ".join((reason or "").split())
    errors = {}
    if not reason:
        errors["reason"] = _("Reason: give the reason for unblinding the study.")
    elif problem := reason_problem(reason, label=_("Reason")):
        errors["reason"] = problem
    try:
        reauthenticate(request, by, password)
    except ValidationError as refused:
        errors.update(refused.message_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if not study.blinded:
            raise ValidationError(_("Study %(code)s is not blinded.") % {"code": study.code})
        lock = database_lock(study)
        if lock is None:
            raise ValidationError(
                _(
                    "Study %(code)s: the database is not locked. Unblinding comes after the "
                    "database lock, which the data manager places on the Freezes and locks page."
                )
                % {"code": study.code}
            )
        with audited(by=by, reason=f"study unblinding: {reason}"):
            study.blinded = False
            study.save(update_fields=["blinded"])
            unblinding = StudyUnblinding.objects.create(study=study, by=by, reason=reason)
            subject, body = _sponsor_email(unblinding, lock)
            email_queue(
                dedupe_key=f"study-unblinding:{unblinding.pk}",
                kind=EMAIL_KIND,
                recipients=study.current_protocol.protocol.safety.sponsor_safety_contacts,
                subject=subject,
                body=body,
            )
    return unblinding


def _sponsor_email(unblinding: StudyUnblinding, lock: DataLock) -> tuple[str, str]:
    # In English whatever the administrator's language: it goes to the sponsor.
    study = unblinding.study
    who = unblinding.by
    at = unblinding.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    locked = lock.placed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    subject = f"[{study.code}] The study has been unblinded"
    body = "\n".join(
        [
            "The whole study was unblinded in the eCRF: every member now sees the",
            "treatment arms.",
            "",
            f"Study: {study.code} ({study.acronym})",
            f"Database locked: {locked}",
            f"Unblinded by: {who.get_full_name() or who.username} ({who.username})",
            f"Date and time: {at}",
            f"Reason: {unblinding.reason}",
        ]
    )
    return subject, body
