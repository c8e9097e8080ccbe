"""The sponsor's SAE notification: what the safety desk needs, never the treatment arm.

Written in English whatever the investigator's language (it goes to the sponsor), with
instants in UTC and in the site's zone. It is built from the event and the report only:
nothing here reads the allocation, so no arm or kit-to-arm link can leak into it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.utils import translation

from ecrf.notifications.models import OutboundEmail
from ecrf.safety.models import SAE_CRITERIA, AdverseEvent

SUBJECT_MAX_LENGTH = OutboundEmail._meta.get_field("subject").max_length

CRITERION_LABELS = {
    "sae_death": "results in death",
    "sae_life_threatening": "life-threatening",
    "sae_hospitalisation": "requires or prolongs hospitalisation",
    "sae_disability": "persistent or significant disability/incapacity",
    "sae_congenital_anomaly": "congenital anomaly/birth defect",
    "sae_important_medical_event": "other important medical event",
}


def _instant(value: datetime | None, zone: str) -> str:
    if value is None:
        return "-"
    local = value.astimezone(ZoneInfo(zone))
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({local:%Y-%m-%d %H:%M %Z} site time)"


def sae_report_email(report) -> tuple[str, str]:
    with translation.override("en"):
        return _compose(report)


def _compose(report) -> tuple[str, str]:
    event: AdverseEvent = report.adverse_event
    patient = event.patient
    study, site = patient.study, patient.site
    zone = site.timezone
    kind = "Initial SAE report" if report.is_initial else f"SAE follow-up report {report.number}"
    subject = f"[{study.code}] {kind}: {patient.subject_code} {event.label} {event.term}"
    if event.susar:
        subject += " (suspected SUSAR)"
    # One header line, within OutboundEmail.subject: a line break in the term would make
    # the message unsendable (BadHeaderError), a long term would not fit the row.
    subject = " ".join(subject.split())[:SUBJECT_MAX_LENGTH]
    criteria = [CRITERION_LABELS[name] for name in SAE_CRITERIA if getattr(event, name)]
    lines = [
        f"{kind} submitted in the eCRF.",
        "",
        # The code, not the acronym or title: those may name the study drug
        # ("Imatinib-Scleroderma"), and a blinded message names no treatment at all.
        f"Study: {study.code}",
        f"Site: {site.code} - {site.name}",
        f"Patient: {patient.subject_code}",
        f"Event: {event.label} {event.term}",
        f"MedDRA LLT/PT: {event.meddra_llt_code or '-'} / {event.meddra_pt_code or '-'}",
        f"Onset: {event.onset_date}",
        f"End: {'ongoing' if event.ongoing else (event.end_date or '-')}",
        f"CTCAE grade: {event.ctcae_grade}",
        f"Seriousness: {', '.join(criteria)}",
        f"Relatedness (investigator): {event.get_relatedness_display()}",
        f"Expected: {'yes' if event.expected else 'no'}",
        f"Action with the study drug: {event.get_action_taken_display()}",
        f"Outcome: {event.get_outcome_display()}",
    ]
    if event.death_date:
        lines.append(f"Date of death: {event.death_date.isoformat()}")
    # The initial report's clock runs from the awareness of the seriousness, which may be
    # days after the event itself was known; a follow-up's from its new information.
    lines += [
        "",
        f"Site aware of the event at: {_instant(event.aware_at, zone)}",
        f"Site aware of the seriousness at: {_instant(event.serious_aware_at, zone)}",
    ]
    if not report.is_initial:
        lines.append(f"New information received at: {_instant(report.aware_at, zone)}")
    lines += [
        f"Report due at: {_instant(report.due_at, zone)}",
        f"Submitted at: {_instant(report.submitted_at, zone)}",
        f"Submitted by: {report.submitted_by.get_full_name() or report.submitted_by.username}"
        f" ({report.submitted_by.username})",
    ]
    if report.changes:
        lines += ["", "Changes since the previous report:"]
        for change in report.changes:
            label, old, new = AdverseEvent.readable_change(change)
            lines.append(f"- {label}: {old} -> {new}")
    if report.narrative:
        lines += ["", "Narrative:", report.narrative]
    lines += [
        "",
        "This message does not state the treatment arm. Acknowledge receipt in the eCRF:",
        "the acknowledgement is the sponsor's first knowledge for the SUSAR clock.",
    ]
    return subject, "\n".join(lines)
