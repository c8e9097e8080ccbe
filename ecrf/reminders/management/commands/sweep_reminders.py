"""`manage.py sweep_reminders [--at ISO-DATETIME] [--dry-run]`: the beat task's sweep, by hand."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ecrf.patients.models import Patient, Visit
from ecrf.reminders import rules
from ecrf.reminders.services import reminders_sweep


def parse_instant(value: str):
    try:
        return rules.parse_instant(value)
    except ValueError as error:
        raise CommandError(f"--at {error}") from None


class Command(BaseCommand):
    help = "Record and queue the reminders due at an instant (now by default)."

    def add_arguments(self, parser):
        parser.add_argument("--at", help="ISO 8601 date and time (default: now)")
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would be sent; write nothing"
        )

    def handle(self, *args, at=None, dry_run=False, **options):
        instant = parse_instant(at) if at is not None else timezone.now()
        result = reminders_sweep(at=instant, dry_run=dry_run)
        if dry_run:
            # Names for the reader, three queries whatever the number of reminders.
            subjects = dict(
                Patient.objects.filter(pk__in={d.patient_id for d in result.due}).values_list(
                    "pk", "subject_code"
                )
            )
            visits = dict(
                Visit.objects.filter(
                    pk__in={d.visit_id for d in result.due if d.visit_id}
                ).values_list("pk", "code")
            )
            users = dict(
                get_user_model()
                .objects.filter(pk__in={d.recipient_id for d in result.due})
                .values_list("pk", "username")
            )
            for due in result.due:
                note = f" (skipped: {due.skipped})" if due.skipped else ""
                visit = f" visit {visits[due.visit_id]}" if due.visit_id else ""
                self.stdout.write(
                    f"{due.due_at:%Y-%m-%d %H:%M} UTC  {due.kind:<14} {subjects[due.patient_id]}"
                    f"{visit} → {users[due.recipient_id]} [{due.delivery}]{note}"
                )
            self.stdout.write(
                f"{len(result.due)} reminders would be recorded at {instant:%Y-%m-%d %H:%M %Z}."
            )
            return
        self.stdout.write(
            f"{instant:%Y-%m-%d %H:%M %Z}: {len(result.due)} due, {result.recorded} new, "
            f"{result.queued} queued in {result.emails} emails, {result.cancelled} cancelled."
        )
