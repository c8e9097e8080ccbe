"""Safety-lab prompts: a value beyond the protocol's alert limits asks the investigator to
record an adverse event or to dismiss the prompt with a reason.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audited
from ecrf.patients.locks import require_unlocked
from ecrf.safety.models import LabAlert


def lab_alert_limits(analyte: str, alert, labs) -> tuple[bool, str]:
    """Whether the analyte's value is beyond the protocol's alert, and the limit in words."""
    value = getattr(labs, analyte)
    if value is None:
        return False, ""
    if alert.below is not None and value < Decimal(str(alert.below)):
        return True, f"< {alert.below:g}"
    if alert.above is not None and value > Decimal(str(alert.above)):
        return True, f"> {alert.above:g}"
    if alert.above_uln_ratio is not None:
        uln = getattr(labs, f"{analyte}_uln", None)
        if uln and value / uln > Decimal(str(alert.above_uln_ratio)):
            return True, f"> {alert.above_uln_ratio:g} × ULN ({_plain(uln)})"
    return False, ""


def _plain(number: Decimal) -> str:
    """45, 100, 0.5: the same text whether the value came from a form or from the database
    (which gives 45.0), and never an exponent (100 normalised is 1E+2)."""
    return format(Decimal(number).normalize(), "f")


def lab_alerts_refresh(*, labs, by) -> list[LabAlert]:
    """After a safety_labs save: open a prompt per value beyond its alert, withdraw corrected ones.

    Runs inside the form's transaction and audit context. Returns the prompts opened or
    reopened by this save.
    """
    protocol = labs.protocol_version.protocol
    alerts = protocol.safety.lab_alerts
    # Locked as ae_create and lab_alert_dismiss lock the prompt they answer, so that a
    # prompt answered meanwhile is not withdrawn or reopened behind the answer's back.
    existing = {a.analyte: a for a in LabAlert.objects.select_for_update().filter(labs=labs)}
    opened = []
    for analyte, alert in alerts.items():
        beyond, limit = lab_alert_limits(analyte, alert, labs)
        value = getattr(labs, analyte)
        current = existing.get(analyte)
        if beyond:
            if current is None:
                opened.append(
                    LabAlert.objects.create(
                        patient_id=labs.patient_id,
                        visit_id=labs.visit_id,
                        labs=labs,
                        analyte=analyte,
                        value=value,
                        limit=limit,
                    )
                )
                continue
            # A dismissal judged one value: another value beyond the limit asks again.
            reopen = current.status == LabAlert.Status.WITHDRAWN or (
                current.status == LabAlert.Status.DISMISSED and current.value != value
            )
            if reopen or (current.status == LabAlert.Status.OPEN and current.value != value):
                current.value, current.limit = value, limit
                current.status = LabAlert.Status.OPEN
                current.dismiss_reason, current.resolved_by, current.resolved_at = "", None, None
                current.save(
                    update_fields=[
                        "value",
                        "limit",
                        "status",
                        "dismiss_reason",
                        "resolved_by",
                        "resolved_at",
                    ]
                )
                if reopen:
                    opened.append(current)
        elif current is not None and current.status == LabAlert.Status.OPEN:
            current.status = LabAlert.Status.WITHDRAWN
            current.save(update_fields=["status"])
    return opened


def lab_alert_dismiss(*, alert: LabAlert, by, reason: str) -> LabAlert:
    """The investigator judges the value not an adverse event, and says why."""
    require(by, Action.RECORD_AE, patient=alert.patient)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for not recording an AE.")})
    with transaction.atomic():
        alert = (
            LabAlert.objects.select_for_update(of=("self",))
            .select_related("patient", "labs")
            .get(pk=alert.pk)
        )
        # The judgement of a lab value is data of its visit and its safety_labs form.
        require_unlocked(patient=alert.patient, entry=alert.labs)
        if alert.status != LabAlert.Status.OPEN:
            raise ValidationError(_("This laboratory prompt is not open any more."))
        with audited(by=by, reason=f"lab prompt dismissed: {reason}"):
            alert.status = LabAlert.Status.DISMISSED
            alert.dismiss_reason = reason[:300]
            alert.resolved_by, alert.resolved_at = by, timezone.now()
            alert.save()
    return alert
