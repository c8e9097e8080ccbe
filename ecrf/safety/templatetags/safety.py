from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django import template
from django.db.models import OuterRef, Subquery
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import pgettext

from ecrf.safety.clock import duration_label
from ecrf.safety.models import AdverseEvent, LabAlert, SaeReport

register = template.Library()


@register.simple_tag
def local_and_utc(value: datetime | None, zone: str):
    """An instant in the site's zone, with UTC beside it: '2026-10-25 09:00 CET (08:00 UTC)'."""
    if value is None:
        return "—"
    local = value.astimezone(ZoneInfo(zone))
    return format_html(
        '<time datetime="{}">{} <span class="text-body-secondary">({} UTC)</span></time>',
        value.astimezone(UTC).isoformat(),
        date_format(local, "Y-m-d H:i T"),
        value.astimezone(UTC).strftime("%H:%M"),
    )


@register.filter
def duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    return duration_label(value, day=pgettext("unit of a duration in days", "d"))


@register.filter
def criteria_labels(names: list[str]) -> str:
    return ", ".join(str(AdverseEvent._meta.get_field(name).verbose_name) for name in names)


@register.filter
def readable_changes(changes: list[dict]) -> list[tuple[str, str, str]]:
    return [AdverseEvent.readable_change(change) for change in changes]


@register.inclusion_tag("safety/_casebook_card.html", takes_context=True)
def patient_ae_card(context, patient, protocol) -> dict:
    """The casebook's adverse-event card (two queries), when the protocol keeps an AE log.

    A tag, so that the patient page (crfs) shows the log without importing safety.
    """
    if not protocol.has_form("adverse_event"):
        return {"has_ae_log": False}
    user = context["request"].user
    events = list(
        AdverseEvent.objects.visible_to(user)
        .filter(patient=patient)
        .annotate(
            initial_submitted_at=Subquery(
                SaeReport.objects.filter(adverse_event=OuterRef("pk"), number=0).values(
                    "submitted_at"
                )[:1]
            )
        )
        .order_by("number")
    )
    return {
        "has_ae_log": True,
        "study": context["study"],
        "patient": patient,
        "adverse_events": events,
        "open_lab_alerts": LabAlert.objects.visible_to(user).filter(patient=patient).open().count(),
    }
