"""The reminders' screens: the site's upcoming visits with their reminders, a person's
reminder settings, and the study's reminders log for administrators and data managers."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ecrf.accounts.access import studies_visible_to
from ecrf.accounts.permissions import Action, can
from ecrf.accounts.services import user_language_set
from ecrf.patients.casebook import visit_timing
from ecrf.patients.models import Patient, Visit
from ecrf.patients.selectors import study_for
from ecrf.reminders.filters import ReminderFilter
from ecrf.reminders.forms import LanguageForm, ReminderSettingsForm
from ecrf.reminders.models import Reminder
from ecrf.reminders.rules import visit_next_due
from ecrf.reminders.services import (
    reminder_settings_for,
    reminder_settings_save,
    reminders_received,
)

UPCOMING_DAYS = 14
# Most urgent first: a site with hundreds of visits due reads them a page at a time.
UPCOMING_PAGE_SIZE = 50
LOG_PAGE_SIZE = 50


@login_required
def upcoming_visits(request, study_code: str):
    """Visits due soon or overdue at the user's sites, most urgent first, each with its
    next reminder and the ones already sent (served as `patients:upcoming`)."""
    study = study_for(request.user, study_code)
    today = timezone.localdate()
    visits = (
        Visit.objects.visible_to(request.user)
        .filter(
            patient__study=study,
            patient__status=Patient.Status.ENROLLED,
            status__in=[Visit.Status.PLANNED, Visit.Status.IN_PROGRESS],
            earliest_date__isnull=False,
            earliest_date__lte=today + timedelta(days=UPCOMING_DAYS),
        )
        .select_related("patient__site", "protocol_version")
        .order_by("latest_date", "patient__subject_code", "pk")
    )
    page = Paginator(visits, UPCOMING_PAGE_SIZE).get_page(request.GET.get("page"))
    sent = defaultdict(list)
    for reminder in (
        Reminder.objects.filter(visit__in=list(page))
        .select_related("email", "recipient")
        .order_by("visit_id", "due_at", "kind", "occurrence", "pk")
    ):
        sent[reminder.visit_id].append(reminder)
    specs = {}
    rows = []
    for visit in page:
        version = visit.protocol_version
        if version.pk not in specs:
            specs[version.pk] = version.protocol.reminders
        rows.append(
            (
                visit,
                *visit_timing(visit, today),
                _next_reminder(visit, specs[version.pk], today, sent[visit.pk]),
                _sent_summary(sent[visit.pk]),
            )
        )
    return render(
        request,
        "reminders/upcoming.html",
        {
            "study": study,
            "rows": rows,
            "page": page,
            "query": "",
            "today": today,
            "horizon": UPCOMING_DAYS,
            "send_at": specs and next(iter(specs.values())).send_at,
            "can_read_log": can(request.user, Action.READ_REMINDER_LOG, study=study),
        },
    )


def _next_reminder(visit, spec, today, sent):
    """The next reminder the visit will get (None: none, or the visit took place)."""
    if visit.status != Visit.Status.PLANNED or visit.visit_date is not None:
        return None
    recorded = {(r.kind, r.occurrence) for r in sent}
    day = today
    for _attempt in range(3):
        due = visit_next_due(
            day,
            earliest=visit.earliest_date,
            target=visit.target_date,
            latest=visit.latest_date,
            spec=spec,
        )
        if due is None or (due.kind, due.occurrence) not in recorded:
            return due
        day = due.day + timedelta(days=1)
    return None


# The order a visit's reminder statuses are shown in: what went, then what did not.
_STATUS_ORDER = ["sent", "pending", "failed", "cancelled", "skipped"]


def _sent_summary(reminders):
    """One line per reminder of the visit (kind, day, occurrence), with how many of its
    recipients each status has (sent, on its way, failed, cancelled, skipped) and who
    they are."""
    grouped: dict[tuple, list[Reminder]] = {}
    for reminder in reminders:
        grouped.setdefault((reminder.kind, reminder.occurrence, reminder.due_on), []).append(
            reminder
        )
    summary = []
    for (kind, occurrence, day), group in grouped.items():
        statuses: dict[str, int] = {}
        for reminder in group:
            statuses[reminder.delivery_status] = statuses.get(reminder.delivery_status, 0) + 1
        summary.append(
            {
                "kind": kind,
                "occurrence": occurrence,
                "day": day,
                "statuses": sorted(statuses.items(), key=lambda i: _STATUS_ORDER.index(i[0])),
                "recipients": len(group),
                "names": sorted(r.recipient.get_full_name() or r.recipient.username for r in group),
            }
        )
    return summary


@login_required
def reminder_settings(request):
    """The user's language and, for each study they belong to, how reminders reach them."""
    studies = list(studies_visible_to(request.user).order_by("code"))
    current = reminder_settings_for(request.user, studies)
    language_form = LanguageForm(initial={"language": request.user.language})
    forms = {
        study.pk: ReminderSettingsForm(
            prefix=f"s{study.pk}",
            initial={
                "delivery": current[study.pk].delivery,
                "visit_reminders": current[study.pk].visit_reminders,
            },
        )
        for study in studies
    }
    if request.method == "POST":
        language_form = LanguageForm(request.POST)
        forms = {
            study.pk: ReminderSettingsForm(request.POST, prefix=f"s{study.pk}") for study in studies
        }
        if language_form.is_valid() and all(f.is_valid() for f in forms.values()):
            try:
                with transaction.atomic():
                    user_language_set(
                        user=request.user, language=language_form.cleaned_data["language"]
                    )
                    for study in studies:
                        data = forms[study.pk].cleaned_data
                        reminder_settings_save(
                            user=request.user,
                            study=study,
                            delivery=data["delivery"],
                            visit_reminders=data["visit_reminders"],
                        )
            except (ValidationError, PermissionDenied) as exc:
                messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
            else:
                # In the language just chosen: the next page is shown in it.
                with translation.override(request.user.language):
                    messages.success(request, _("Your reminder settings are saved."))
                response = redirect("reminders:settings")
                response.set_cookie(
                    settings.LANGUAGE_COOKIE_NAME, request.user.language, samesite="Lax"
                )
                return response
    received = reminders_received(request.user, studies)
    return render(
        request,
        "reminders/settings.html",
        {
            "language_form": language_form,
            "studies": [(study, forms[study.pk], received[study.pk]) for study in studies],
            "invalid": request.method == "POST"
            and any(form.errors for form in [language_form, *forms.values()]),
        },
    )


def _log_study(request, study_code):
    study = study_for(request.user, study_code)
    if not can(request.user, Action.READ_REMINDER_LOG, study=study):
        raise PermissionDenied(_("Only administrators and data managers read the reminders log."))
    return study


@login_required
def reminder_log(request, study_code: str):
    """Every reminder of the study, newest first, filtered by status, kind, site and day."""
    study = _log_study(request, study_code)
    reminders = (
        Reminder.objects.visible_to(request.user)
        .filter(study=study)
        .select_related("recipient", "site", "patient", "visit", "email")
        .order_by("-due_at", "-pk")
    )
    filters = ReminderFilter(request.GET, queryset=reminders, study=study, user=request.user)
    page = Paginator(filters.qs, LOG_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "reminders/log.html",
        {
            "study": study,
            "filters": filters,
            "page": page,
            "query": query.urlencode(),
            "counts": ReminderFilter.status_counts(reminders),
        },
    )


@login_required
def reminder_detail(request, study_code: str, reminder_id: int):
    """One reminder: its key, what happened to it, and the text of its email."""
    study = _log_study(request, study_code)
    reminder = get_object_or_404(
        Reminder.objects.visible_to(request.user)
        .filter(study=study)
        .select_related("recipient", "site", "patient", "visit", "email"),
        pk=reminder_id,
    )
    return render(request, "reminders/detail.html", {"study": study, "reminder": reminder})
