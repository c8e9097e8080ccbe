"""The reminder emails, in each recipient's language, with dates in the site's calendar.

Built from the visit, the patient's subject code and the deadlines only: nothing here
reads the allocation, so no arm, no kit number and no identifier beyond the subject code
can reach a message. The study is named by its code (its title may name the drug).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ecrf.notifications.models import OutboundEmail
from ecrf.reminders.models import Kind, Reminder
from ecrf.safety.models import SaeReport
from ecrf.studies.models import ProtocolVersion

SUBJECT_MAX_LENGTH = OutboundEmail._meta.get_field("subject").max_length


@dataclass
class Details:
    """What the emails of a batch of rows need beyond the rows themselves (one query)."""

    sae_reports: dict[int, SaeReport]
    protocols: dict[int, object]  # validated once per protocol version, not once per row
    # Each date in each language formatted once: a sweep's thousands of rows share a few.
    days: dict[tuple[str, date], str] = field(default_factory=dict)
    settings_urls: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_rows(cls, rows: list[Reminder]) -> Details:
        report_ids = {r.object_id for r in rows if r.kind in (Kind.SAE_DUE, Kind.SAE_OVERDUE)}
        reports = (
            SaeReport.objects.filter(pk__in=report_ids).select_related("adverse_event")
            if report_ids
            else []
        )
        version_ids = {r.patient.protocol_version_id for r in rows}
        versions = ProtocolVersion.objects.filter(pk__in=version_ids)
        return cls({report.pk: report for report in reports}, {v.pk: v.protocol for v in versions})

    def day(self, value: date | None) -> str:
        key = (translation.get_language(), value)
        if key not in self.days:
            self.days[key] = _day(value)
        return self.days[key]

    def settings_url(self) -> str:
        language = translation.get_language()
        if language not in self.settings_urls:
            self.settings_urls[language] = settings_url()
        return self.settings_urls[language]

    def protocol(self, version_id: int):
        if version_id not in self.protocols:
            self.protocols[version_id] = ProtocolVersion.objects.get(pk=version_id).protocol
        return self.protocols[version_id]


def _day(value: date | None) -> str:
    return date_format(value, "DATE_FORMAT") if value else "—"


def _instant(value: datetime, zone: str) -> str:
    local = value.astimezone(ZoneInfo(zone))
    return f"{date_format(local, 'DATE_FORMAT')} {local:%H:%M} ({zone})"


def patient_url(row: Reminder) -> str:
    path = reverse("patients:detail", args=[row.study.code, row.patient.subject_code])
    return settings.SITE_URL.rstrip("/") + path


def settings_url() -> str:
    return settings.SITE_URL.rstrip("/") + reverse("reminders:settings")


def headline(row: Reminder, details: Details) -> str:
    """One sentence: what is due, for whom (the active language)."""
    code = row.patient.subject_code
    if row.visit_id is not None:
        visit = row.visit
        spec = details.protocol(visit.protocol_version_id).visit(visit.code)
        name = {"visit": visit.code, "name": spec.name, "patient": code}
        n = row.occurrence
        if row.kind == Kind.WINDOW_OPENS:
            if n == 0:
                return (
                    _("%(patient)s: the window of visit %(visit)s (%(name)s) opens today.") % name
                )
            return ngettext(
                "%(patient)s: the window of visit %(visit)s (%(name)s) opens in %(days)d day.",
                "%(patient)s: the window of visit %(visit)s (%(name)s) opens in %(days)d days.",
                n,
            ) % {**name, "days": n}
        if row.kind == Kind.BEFORE_TARGET:
            if n == 0:
                return (
                    _("%(patient)s: today is the target day of visit %(visit)s (%(name)s).") % name
                )
            return ngettext(
                "%(patient)s: visit %(visit)s (%(name)s) reaches its target day in %(days)d day.",
                "%(patient)s: visit %(visit)s (%(name)s) reaches its target day in %(days)d days.",
                n,
            ) % {**name, "days": n}
        if row.kind == Kind.WINDOW_CLOSES:
            if n == 0:
                return (
                    _(
                        "%(patient)s: today is the last day of the window of visit "
                        "%(visit)s (%(name)s)."
                    )
                    % name
                )
            return ngettext(
                "%(patient)s: the window of visit %(visit)s (%(name)s) closes in %(days)d day.",
                "%(patient)s: the window of visit %(visit)s (%(name)s) closes in %(days)d days.",
                n,
            ) % {**name, "days": n}
        return (
            _(
                "%(patient)s: visit %(visit)s (%(name)s) is overdue: its window has closed and it "
                "is neither recorded nor declared missed."
            )
            % name
        )
    if row.kind == Kind.PREGNANCY_TEST:
        return ngettext(
            "%(patient)s: inclusion is planned in %(days)d day and no pregnancy test is dated "
            "within the days before it yet.",
            "%(patient)s: inclusion is planned in %(days)d days and no pregnancy test is dated "
            "within the days before it yet.",
            row.occurrence,
        ) % {"patient": code, "days": row.occurrence}
    if row.kind in (Kind.SAE_DUE, Kind.SAE_OVERDUE):
        report = details.sae_reports.get(row.object_id)
        event = report.adverse_event.label if report else ""
        if row.kind == Kind.SAE_DUE:
            return _("%(patient)s: the initial SAE report of %(event)s is due soon.") % {
                "patient": code,
                "event": event,
            }
        return _("%(patient)s: the initial SAE report of %(event)s is overdue.") % {
            "patient": code,
            "event": event,
        }
    if row.kind == Kind.QUERY:
        return ngettext(
            "%(patient)s: query #%(number)d has been open for %(days)d day and waits for "
            "the site's answer.",
            "%(patient)s: query #%(number)d has been open for %(days)d days and waits for "
            "the site's answer.",
            row.occurrence,
        ) % {"patient": code, "number": row.object_id, "days": row.occurrence}
    if row.kind == Kind.SUSAR_DUE:
        return _("%(patient)s: a SUSAR's report to the authorities is due soon.") % {
            "patient": code
        }
    return _("%(patient)s: a SUSAR's report to the authorities is overdue.") % {"patient": code}


def detail_lines(row: Reminder, details: Details) -> list[str]:
    """The dates behind the headline, in the site's calendar."""
    zone = row.site.timezone
    lines = []
    if row.visit_id is not None:
        visit = row.visit
        lines += [
            _("Target date: %(date)s") % {"date": details.day(visit.target_date)},
            _("Window: %(start)s to %(end)s (%(zone)s calendar)")
            % {
                "start": details.day(visit.earliest_date),
                "end": details.day(visit.latest_date),
                "zone": zone,
            },
        ]
    elif row.kind == Kind.PREGNANCY_TEST:
        planned = row.patient.planned_day0_date
        spec = details.protocol(row.patient.protocol_version_id).reminders.pregnancy_test
        days = spec.days_before_inclusion if spec else 0
        lines += [
            _("Planned inclusion: %(date)s") % {"date": details.day(planned)},
            ngettext(
                "The test must be dated within the %(days)d day before inclusion.",
                "The test must be dated within the %(days)d days before inclusion.",
                days,
            )
            % {"days": days},
        ]
    elif row.kind in (Kind.SAE_DUE, Kind.SAE_OVERDUE):
        report = details.sae_reports.get(row.object_id)
        if report is not None:
            lines.append(_("Due at: %(instant)s") % {"instant": _instant(report.due_at, zone)})
    lines.append(_("Site: %(site)s") % {"site": f"{row.site.name} ({row.site.code})"})
    if row.kind == Kind.QUERY:
        path = reverse("review:query", args=[row.study.code, row.object_id])
        lines.append(settings.SITE_URL.rstrip("/") + path)
    lines.append(patient_url(row))
    return lines


def _subject(text: str) -> str:
    # One header line that fits the outbox row (French no-break spaces kept).
    return re.sub(r"\s*[\r\n\t]+\s*", " ", text).strip()[:SUBJECT_MAX_LENGTH]


def _footer(row: Reminder, details: Details) -> list[str]:
    return [
        "",
        "-- ",
        _(
            "You receive this reminder as a member of study %(study)s. Your reminder settings: "
            "%(url)s"
        )
        % {"study": row.study.code, "url": details.settings_url()},
    ]


def email_for(rows: list[Reminder], details: Details) -> OutboundEmail:
    """The outbox email for one reminder, or for one person's digest of a study's day."""
    first = rows[0]
    user = first.recipient
    with translation.override(user.language):
        if len(rows) == 1 and first.delivery != "digest":
            title = headline(first, details)
            subject = f"[{first.study.code}] {title}"
            body = [title, "", *detail_lines(first, details)]
            key = f"reminder:{first.pk}"
        else:
            subject = ngettext(
                "[%(study)s] %(count)d reminder for %(day)s",
                "[%(study)s] %(count)d reminders for %(day)s",
                len(rows),
            ) % {"study": first.study.code, "count": len(rows), "day": details.day(first.due_on)}
            body = []
            for row in rows:
                body += [
                    f"- {headline(row, details)}",
                    *(f"  {line}" for line in detail_lines(row, details)),
                    "",
                ]
            key = f"reminder-digest:{first.pk}"
        body += _footer(first, details)
    return OutboundEmail(
        dedupe_key=key,
        kind="reminder_digest" if key.startswith("reminder-digest") else "reminder",
        recipients=[user.email],
        subject=_subject(subject),
        body="\n".join(body) + "\n",
    )
