"""The reminder sweep: what is due at an instant, recorded once, emailed once.

`reminders_sweep(at=...)` is what the beat task runs every 15 minutes and what
`manage.py sweep_reminders --at` runs by hand:

1. withdraw the reminders not yet emailed whose reason has gone (the visit took place or
   was declared missed, the patient's participation ended, the SAE report was sent);
2. work out what is due at `at` (`reminders_due`): the visits of enrolled patients whose
   reminder day is today at their site (from the sending hour on), the pregnancy tests
   before a planned inclusion, the SAE initial reports and SUSAR clocks near or past
   their deadline; one row per recipient, inserted with ON CONFLICT DO NOTHING on the
   row's key, so a second sweep, a second worker or a retried task adds nothing;
3. queue the due rows' emails in the outbox (`notifications`), claimed row by row with
   FOR UPDATE SKIP LOCKED, one email per reminder or one digest per person, study and
   day; the outbox sends them once the transaction commits.

The number of queries depends on the studies, versions and time zones, not on how many
visits there are: the visits are narrowed in SQL, and the rules in `rules.py` decide.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import BooleanField, Exists, OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from ecrf.accounts.models import Membership, account_id
from ecrf.accounts.permissions import Action, roles_allowed
from ecrf.audit.context import audited
from ecrf.crfs.models import PregnancyTest
from ecrf.notifications.models import OutboundEmail
from ecrf.notifications.services import emails_dispatch_on_commit
from ecrf.patients.models import Patient, Visit
from ecrf.reminders import emails
from ecrf.reminders.models import (
    SAFETY_KINDS,
    VISIT_KINDS,
    Delivery,
    Kind,
    Reminder,
    ReminderPreference,
)
from ecrf.reminders.rules import (
    pregnancy_test_due_on,
    query_reminder_due,
    reminder_day,
    repeated_overdue,
    send_instant,
    visit_due_on,
)
from ecrf.review.models import Query, QueryMessage
from ecrf.review.states import QueryStatus
from ecrf.safety.clock import susar_clock
from ecrf.safety.models import AdverseEvent, SaeReport
from ecrf.studies.models import ProtocolVersion, Site

# Stored in English on the row; the screens translate them (gettext_noop marks them).
NO_EMAIL = gettext_noop("The recipient has no email address.")
NO_LONGER_NEEDED = gettext_noop("No longer needed: done before it was sent.")


@dataclass(frozen=True)
class Due:
    """One reminder due for one recipient, before it is recorded."""

    kind: Kind
    object_id: int
    occurrence: int
    recipient_id: int
    study_id: int
    site_id: int
    patient_id: int
    visit_id: int | None
    due_on: date
    due_at: datetime
    delivery: str
    skipped: str = ""  # why it is not sent (no email address)

    @property
    def key(self) -> tuple:
        return (self.kind, self.object_id, self.occurrence, self.recipient_id)


@dataclass
class SweepResult:
    due: list[Due]
    recorded: int = 0
    queued: int = 0
    emails: int = 0
    cancelled: int = 0


# -- what is due ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Recipient:
    user_id: int
    email: str
    delivery: str
    visit_reminders: bool


def _reminded_memberships() -> Q:
    """The memberships reminders go to: those whose role the permission table lets receive
    the site's reminders (at their site, or at every site for a membership without one),
    and the sponsor's staff of the whole study who acknowledge SAE reports (the SUSARs)."""
    return Q(role__in=sorted(roles_allowed(Action.RECEIVE_REMINDERS))) | Q(
        role__in=sorted(roles_allowed(Action.ACKNOWLEDGE_SAE)), site__isnull=True
    )


class _Recipients:
    """Who is reminded at each site, and how: one query for the memberships, one for the
    settings, whatever the number of patients."""

    def __init__(self, study_ids: set[int]):
        site_roles = roles_allowed(Action.RECEIVE_REMINDERS)
        sponsor_roles = roles_allowed(Action.ACKNOWLEDGE_SAE)
        rows = (
            Membership.objects.filter(study_id__in=study_ids, active=True, user__is_active=True)
            .filter(_reminded_memberships())
            .values_list("study_id", "site_id", "role", "user_id", "user__email")
        )
        settings = {
            (p.user_id, p.study_id): p
            for p in ReminderPreference.objects.filter(study_id__in=study_ids)
        }
        self.site_staff: dict[tuple[int, int | None], dict[int, _Recipient]] = defaultdict(dict)
        self.sponsor_staff: dict[int, dict[int, _Recipient]] = defaultdict(dict)
        for study_id, site_id, role, user_id, email in rows:
            chosen = settings.get((user_id, study_id))
            recipient = _Recipient(
                user_id,
                email or "",
                chosen.delivery if chosen else Delivery.IMMEDIATE,
                chosen.visit_reminders if chosen else True,
            )
            if role in site_roles:  # site None: every site of the study
                self.site_staff[(study_id, site_id)][user_id] = recipient
            if site_id is None and role in sponsor_roles:
                self.sponsor_staff[study_id][user_id] = recipient

    def at_site(self, study_id: int, site_id: int, kind: Kind) -> list[_Recipient]:
        staff = {
            **self.site_staff.get((study_id, None), {}),
            **self.site_staff.get((study_id, site_id), {}),
        }.values()
        if kind in SAFETY_KINDS:
            return list(staff)
        return [r for r in staff if r.visit_reminders]

    def sponsor(self, study_id: int) -> list[_Recipient]:
        return list(self.sponsor_staff.get(study_id, {}).values())


def _due_for(recipients, kind, *, delivery_applies=True, **fields) -> list[Due]:
    return [
        Due(
            kind=kind,
            recipient_id=r.user_id,
            delivery=r.delivery if delivery_applies else Delivery.IMMEDIATE,
            skipped="" if r.email else NO_EMAIL,
            **fields,
        )
        for r in recipients
    ]


def reminders_due(*, at: datetime) -> list[Due]:
    """Every reminder due at the instant `at`, for every recipient (nothing is written)."""
    versions = list(
        ProtocolVersion.objects.filter(
            Exists(Patient.objects.filter(protocol_version=OuterRef("pk")))
        )
    )
    zones = sorted(set(Site.objects.values_list("timezone", flat=True)))
    recipients = _Recipients({v.study_id for v in versions})
    due: list[Due] = []
    for version in versions:
        spec = version.protocol.reminders
        for zone in zones:
            day = reminder_day(at, spec.send_time, zone)
            if day is None:
                continue
            sent_at = send_instant(day, spec.send_time, zone)
            due += _visits_due(version, spec, zone, day, sent_at, recipients)
            due += _pregnancy_tests_due(version, spec, zone, day, sent_at, recipients)
            due += _queries_due(version, spec, zone, day, sent_at, recipients)
    specs = {v.pk: v.protocol.reminders for v in versions}
    due += _sae_reports_due(at, specs, recipients)
    due += _susars_due(at, specs, recipients)
    return due


def _visits_due(version, spec, zone, day, sent_at, recipients) -> list[Due]:
    """The planned visits with a reminder on `day`, narrowed in SQL, decided by the rules."""
    near = Q()
    for field, days in (
        ("earliest_date", spec.window_opens_in_days),
        ("target_date", spec.days_before_target),
        ("latest_date", spec.window_closes_in_days),
    ):
        if days:
            near |= Q(**{f"{field}__in": [day + timedelta(days=n) for n in days]})
    # Overdue: every `overdue_repeat_days` from the first overdue day.
    first_late = day - timedelta(days=1 + spec.overdue_after_days)
    overdue = RawSQL(
        "(%s::date - patients_visit.latest_date - %s) %% %s = 0",
        (day, 1 + spec.overdue_after_days, spec.overdue_repeat_days),
        output_field=BooleanField(),
    )
    visits = (
        Visit.objects.filter(
            protocol_version=version,
            status=Visit.Status.PLANNED,
            visit_date__isnull=True,
            patient__status=Patient.Status.ENROLLED,
            patient__site__timezone=zone,
        )
        .alias(overdue_today=overdue)
        .filter(near | Q(latest_date__lte=first_late, overdue_today=True))
        .values_list(
            "pk",
            "patient_id",
            "patient__site_id",
            "earliest_date",
            "target_date",
            "latest_date",
        )
    )
    found = []
    for visit_id, patient_id, site_id, earliest, target, latest in visits:
        hit = visit_due_on(day, earliest=earliest, target=target, latest=latest, spec=spec)
        if hit is None:
            continue
        found += _due_for(
            recipients.at_site(version.study_id, site_id, hit.kind),
            hit.kind,
            object_id=visit_id,
            occurrence=hit.occurrence,
            study_id=version.study_id,
            site_id=site_id,
            patient_id=patient_id,
            visit_id=visit_id,
            due_on=day,
            due_at=sent_at,
        )
    return found


def pregnancy_test_condition(protocol) -> str | None:
    """The form condition the protocol's pregnancy test is collected under (None: none)."""
    code = PregnancyTest.index_code()
    return next(
        (f.condition for v in protocol.visits for f in v.forms if f.form == code and f.condition),
        None,
    )


def _pregnancy_tests_due(version, spec, zone, day, sent_at, recipients) -> list[Due]:
    """Screened patients who need a test dated in the days before a planned inclusion."""
    test = spec.pregnancy_test
    condition = pregnancy_test_condition(version.protocol)
    if test is None or condition is None:
        return []
    days = {test.days_before_inclusion, *test.remind_days_before_inclusion}
    planned = [day + timedelta(days=n) for n in sorted(days)]
    dated_in_time = PregnancyTest.objects.filter(
        visit__patient=OuterRef("pk"),
        test_date__gte=OuterRef("planned_day0_date") - timedelta(days=test.days_before_inclusion),
        test_date__lte=OuterRef("planned_day0_date"),
    )
    patients = (
        Patient.objects.filter(
            protocol_version=version,
            status=Patient.Status.SCREENING,
            site__timezone=zone,
            planned_day0_date__in=planned,
            conditions__contains=[condition],
        )
        .exclude(Exists(dated_in_time))
        .values_list("pk", "site_id", "planned_day0_date")
    )
    found = []
    for patient_id, site_id, planned_day0 in patients:
        left = pregnancy_test_due_on(day, planned_day0=planned_day0, spec=test)
        if left is None:
            continue
        found += _due_for(
            recipients.at_site(version.study_id, site_id, Kind.PREGNANCY_TEST),
            Kind.PREGNANCY_TEST,
            object_id=patient_id,
            occurrence=left,
            study_id=version.study_id,
            site_id=site_id,
            patient_id=patient_id,
            visit_id=None,
            due_on=day,
            due_at=sent_at,
        )
    return found


# The queries that wait for the site: raised, or reopened by the reviewer.
WAITING_FOR_SITE = (QueryStatus.OPEN, QueryStatus.REOPENED)


def _queries_due(version, spec, zone, day, sent_at, recipients) -> list[Due]:
    """Queries the site has not answered for `query_reminder_days` (again every as many
    days), counted from the raise or the last reopening, in the site's calendar. The
    occurrence is the query's days open on that day, so a reopened query's reminders
    never meet the earlier ones' keys."""
    every = spec.query_reminder_days
    reopened = (
        QueryMessage.objects.filter(query=OuterRef("pk"), kind=QueryMessage.Kind.REOPEN)
        .order_by("-pk")
        .values("at")[:1]
    )
    queries = (
        Query.objects.filter(
            status__in=WAITING_FOR_SITE,
            patient__protocol_version=version,
            patient__site__timezone=zone,
        )
        .annotate(reopened_at=Subquery(reopened))
        .values_list("pk", "patient_id", "patient__site_id", "opened_at", "reopened_at")
    )
    found = []
    for query_id, patient_id, site_id, opened_at, reopened_at in queries:
        since = _local_day(reopened_at or opened_at, zone)
        if not query_reminder_due(day, waiting_since=since, every_days=every):
            continue
        found += _due_for(
            recipients.at_site(version.study_id, site_id, Kind.QUERY),
            Kind.QUERY,
            object_id=query_id,
            occurrence=(day - _local_day(opened_at, zone)).days,
            study_id=version.study_id,
            site_id=site_id,
            patient_id=patient_id,
            visit_id=None,
            due_on=day,
            due_at=sent_at,
        )
    return found


def _local_day(instant: datetime, zone: str) -> date:
    return instant.astimezone(ZoneInfo(zone)).date()


def _sae_reports_due(at, specs, recipients) -> list[Due]:
    """Initial SAE reports not yet submitted: due soon, then overdue (repeated). They go
    on after the participation ended: a death is itself an SAE to report."""
    horizon = at + timedelta(hours=max((s.sae_due_within_hours for s in specs.values()), default=0))
    reports = SaeReport.objects.filter(
        number=0,
        submitted_at__isnull=True,
        adverse_event__serious=True,
        due_at__lte=horizon,
    ).values_list(
        "pk",
        "due_at",
        "adverse_event__patient_id",
        "adverse_event__patient__study_id",
        "adverse_event__patient__site_id",
        "adverse_event__patient__site__timezone",
        "adverse_event__patient__protocol_version_id",
    )
    found = []
    for report_id, due_at, patient_id, study_id, site_id, zone, version_id in reports:
        spec = specs.get(version_id)
        if spec is None:
            continue
        every = timedelta(hours=spec.sae_overdue_repeat_hours)
        nth = repeated_overdue(at, due=due_at, every=every)
        if nth is not None:
            kind, occurrence, since = Kind.SAE_OVERDUE, nth, due_at + (nth - 1) * every
        elif at >= due_at - timedelta(hours=spec.sae_due_within_hours):
            kind, occurrence, since = (
                Kind.SAE_DUE,
                0,
                due_at - timedelta(hours=spec.sae_due_within_hours),
            )
        else:
            continue
        found += _due_for(
            recipients.at_site(study_id, site_id, kind),
            kind,
            delivery_applies=False,
            object_id=report_id,
            occurrence=occurrence,
            study_id=study_id,
            site_id=site_id,
            patient_id=patient_id,
            visit_id=None,
            due_on=_local_day(since, zone),
            due_at=since,
        )
    return found


def _susars_due(at, specs, recipients) -> list[Due]:
    """SUSARs acknowledged by the sponsor and not yet reported to the authorities: the
    sponsor's staff of the study (data managers, administrators) are reminded."""
    related = sorted(AdverseEvent.RELATED)
    events = (
        AdverseEvent.objects.filter(
            serious=True,
            expected=False,
            authority_reported_at__isnull=True,
            sae_reports__number=0,
            sae_reports__acknowledged_at__isnull=False,
        )
        .filter(Q(relatedness__in=related) | Q(sponsor_relatedness__in=related))
        .select_related("patient__site")
        .prefetch_related("sae_reports")
    )
    found = []
    for event in events:
        spec = specs.get(event.patient.protocol_version_id)
        if spec is None or not event.susar:
            continue
        first = next(r for r in event.sae_reports.all() if r.number == 0)
        clock = susar_clock(
            first_knowledge=first.acknowledged_at,
            fatal_or_life_threatening=event.fatal_or_life_threatening,
        )
        nth = repeated_overdue(at, due=clock.due, every=timedelta(days=1))
        warn_from = clock.due - timedelta(days=spec.susar_days_before_deadline)
        if nth is not None:
            kind, occurrence, since = Kind.SUSAR_OVERDUE, nth, clock.due + timedelta(days=nth - 1)
        elif at >= warn_from:
            kind, occurrence, since = Kind.SUSAR_DUE, 0, warn_from
        else:
            continue
        patient = event.patient
        found += _due_for(
            recipients.sponsor(patient.study_id),
            kind,
            delivery_applies=False,
            object_id=event.pk,
            occurrence=occurrence,
            study_id=patient.study_id,
            site_id=patient.site_id,
            patient_id=patient.pk,
            visit_id=None,
            due_on=_local_day(since, patient.site.timezone),
            due_at=since,
        )
    return found


# -- the sweep -----------------------------------------------------------------------------


def reminders_sweep(*, at: datetime, dry_run: bool = False) -> SweepResult:
    """Record and queue everything due at `at` (see the module docstring).

    With `dry_run`, nothing is written: the result lists what would be recorded.
    """
    due = reminders_due(at=at)
    if dry_run:
        recorded = _recorded_keys(due)
        return SweepResult(due=[d for d in due if d.key not in recorded])
    result = SweepResult(due=due)
    with transaction.atomic():
        result.cancelled = reminders_cancel_moot()
        result.recorded = _record(due)
    result.queued, result.emails = reminders_queue(at=at)
    return result


_COLUMNS = {
    # column: (PostgreSQL array type, value of a Due)
    "kind": ("varchar[]", lambda d: str(d.kind)),
    "object_id": ("bigint[]", lambda d: d.object_id),
    "occurrence": ("integer[]", lambda d: d.occurrence),
    "recipient_id": ("bigint[]", lambda d: d.recipient_id),
    "study_id": ("bigint[]", lambda d: d.study_id),
    "site_id": ("bigint[]", lambda d: d.site_id),
    "patient_id": ("bigint[]", lambda d: d.patient_id),
    "visit_id": ("bigint[]", lambda d: d.visit_id),
    "due_on": ("date[]", lambda d: d.due_on),
    "due_at": ("timestamptz[]", lambda d: d.due_at),
    "delivery": ("varchar[]", lambda d: str(d.delivery)),
    "status": (
        "varchar[]",
        lambda d: str(Reminder.Status.SKIPPED if d.skipped else Reminder.Status.DUE),
    ),
    "note": ("varchar[]", lambda d: d.skipped),
}


def _record(due: list[Due]) -> int:
    """Insert the rows in one statement; a row already there (same key) is left as it is.
    Returns how many are new."""
    if not due:
        return 0
    table = Reminder._meta.db_table
    columns = ", ".join(_COLUMNS)
    arrays = ", ".join(f"%s::{sql_type}" for sql_type, _value in _COLUMNS.values())
    sql = (
        f"INSERT INTO {table} ({columns}, created_at) "  # nosec B608  # names from the models' _meta, values as parameters
        f"SELECT *, now() FROM unnest({arrays}) "
        "ON CONFLICT (kind, object_id, occurrence, recipient_id) DO NOTHING RETURNING id"
    )
    params = [[value(d) for d in due] for _type, value in _COLUMNS.values()]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return len(cursor.fetchall())


def _recorded_keys(due: list[Due]) -> set[tuple]:
    if not due:
        return set()
    recorded = Reminder.objects.filter(
        object_id__in={d.object_id for d in due}, kind__in={d.kind for d in due}
    ).values_list("kind", "object_id", "occurrence", "recipient_id")
    return set(recorded)


def reminders_queue(*, at: datetime) -> tuple[int, int]:
    """Turn the due rows into outbox emails, once: (reminders queued, emails written).

    Rows are claimed FOR UPDATE SKIP LOCKED, so two sweeps at once share them out rather
    than both queuing them; the emails are sent once this transaction commits.
    """
    with transaction.atomic():
        rows = list(
            Reminder.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=Reminder.Status.DUE, due_at__lte=at)
            .select_related("recipient", "study", "site", "patient", "visit")
            .order_by("recipient_id", "study_id", "due_on", "due_at", "pk")
        )
        if not rows:
            return 0, 0
        details = emails.Details.for_rows(rows)
        batches: list[list[Reminder]] = []
        digests: dict[tuple, list[Reminder]] = {}
        for row in rows:
            if row.delivery == Delivery.DIGEST and row.kind not in SAFETY_KINDS:
                digests.setdefault((row.recipient_id, row.study_id, row.due_on), []).append(row)
            else:
                batches.append([row])
        batches += digests.values()
        outbox = [emails.email_for(batch, details) for batch in batches]
        written = OutboundEmail.objects.bulk_create(outbox, batch_size=1000)
        _mark_queued(
            [
                (row.pk, email.pk)
                for batch, email in zip(batches, written, strict=True)
                for row in batch
            ]
        )
        emails_dispatch_on_commit([email.pk for email in written])
    return len(rows), len(written)


def _mark_queued(rows_emails: list[tuple[int, int]]) -> None:
    """Each row queued with its email, in one statement (bulk_update's CASE per row costs
    seconds of Python for a few thousand rows)."""
    sql = (
        f"UPDATE {Reminder._meta.db_table} AS reminder SET email_id = queued.email_id, "  # nosec B608  # names from the models' _meta, values as parameters
        "status = %s FROM unnest(%s::bigint[], %s::bigint[]) AS queued(id, email_id) "
        "WHERE reminder.id = queued.id"
    )
    ids, email_ids = zip(*rows_emails, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(sql, [str(Reminder.Status.QUEUED), list(ids), list(email_ids)])


def reminders_cancel_moot() -> int:
    """Withdraw the reminders not yet on their way whose reason has gone; returns how many.

    An email already claimed by a worker goes; one still waiting in the outbox is
    cancelled when every reminder it carries is.
    """
    visit_done = Q(kind__in=VISIT_KINDS) & (
        ~Q(visit__status=Visit.Status.PLANNED)
        | Q(visit__visit_date__isnull=False)
        | Q(patient__status__in=sorted(Patient.ENDED))
    )
    included = Q(kind=Kind.PREGNANCY_TEST) & ~Q(patient__status=Patient.Status.SCREENING)
    reported = Q(kind__in=[Kind.SAE_DUE, Kind.SAE_OVERDUE]) & Exists(
        SaeReport.objects.filter(pk=OuterRef("object_id"), submitted_at__isnull=False)
    )
    susar_reported = Q(kind__in=[Kind.SUSAR_DUE, Kind.SUSAR_OVERDUE]) & Exists(
        AdverseEvent.objects.filter(pk=OuterRef("object_id"), authority_reported_at__isnull=False)
    )
    answered = Q(kind=Kind.QUERY) & ~Exists(
        Query.objects.filter(pk=OuterRef("object_id"), status__in=WAITING_FOR_SITE)
    )
    waiting = Q(status=Reminder.Status.DUE) | Q(
        status=Reminder.Status.QUEUED, email__status=OutboundEmail.Status.PENDING
    )
    moot = list(
        Reminder.objects.filter(waiting)
        .filter(visit_done | included | reported | susar_reported | answered)
        .values_list("pk", "email_id")
    )
    if not moot:
        return 0
    Reminder.objects.filter(pk__in=[pk for pk, _email in moot]).update(
        status=Reminder.Status.CANCELLED, note=NO_LONGER_NEEDED
    )
    carrying = Reminder.objects.filter(email=OuterRef("pk")).exclude(
        status=Reminder.Status.CANCELLED
    )
    OutboundEmail.objects.filter(
        pk__in={email for _pk, email in moot if email}, status=OutboundEmail.Status.PENDING
    ).exclude(Exists(carrying)).update(status=OutboundEmail.Status.CANCELLED)
    return len(moot)


# -- a person's settings -------------------------------------------------------------------


def reminder_settings_for(user, studies) -> dict[int, ReminderPreference]:
    """The user's settings for these studies (unsaved defaults where none is stored)."""
    stored = {
        p.study_id: p for p in ReminderPreference.objects.filter(user=user, study__in=studies)
    }
    return {
        study.pk: stored.get(study.pk) or ReminderPreference(user=user, study=study)
        for study in studies
    }


def reminders_received(user, studies) -> dict[int, set[str]]:
    """What each study's memberships of the user bring (one query): "site" for the visit,
    pregnancy test and SAE reminders of their sites, "sponsor" for the SUSAR ones; an
    empty set where their role receives none (a monitor)."""
    received: dict[int, set[str]] = {study.pk: set() for study in studies}
    memberships = (
        Membership.objects.held_by(account_id(user))
        .filter(study__in=studies)
        .filter(_reminded_memberships())
        .values_list("study_id", "site_id", "role")
    )
    for study_id, site_id, role in memberships:
        if role in roles_allowed(Action.RECEIVE_REMINDERS):
            received[study_id].add("site")
        if site_id is None and role in roles_allowed(Action.ACKNOWLEDGE_SAE):
            received[study_id].add("sponsor")
    return received


def reminder_settings_save(
    *, user, study, delivery: str, visit_reminders: bool
) -> ReminderPreference:
    """A person's own choice for one study: only a member of the study makes it, only for
    themself (so no role of the permission table: it is nobody else's data). SAE and SUSAR
    reminders are not a choice: they are always sent, each at once."""
    if not Membership.objects.held_by(account_id(user)).filter(study=study).exists():
        raise PermissionDenied(_("You are not a member of this study."))
    if delivery not in Delivery.values:
        raise ValidationError(
            {"delivery": _("Choose one email per reminder or one daily digest.")},
            code="invalid_delivery",
        )
    with transaction.atomic(), audited(by=user, reason="reminder settings changed by the user"):
        preference, _created = ReminderPreference.objects.select_for_update().get_or_create(
            user=user,
            study=study,
            defaults={"delivery": delivery, "visit_reminders": visit_reminders},
        )
        if (preference.delivery, preference.visit_reminders) != (delivery, visit_reminders):
            preference.delivery, preference.visit_reminders = delivery, visit_reminders
            preference.save(update_fields=["delivery", "visit_reminders", "updated_at"])
    return preference
