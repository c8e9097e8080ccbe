"""`manage.py raise_automatic_queries [--at ISO-DATETIME]`: the beat task's sweep, by hand."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ecrf.review.auto_queries import queries_raise_automatic
from ecrf.review.tasks import parse_instant


class Command(BaseCommand):
    help = "Raise the automatic queries due at an instant (now by default); idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--at", help="ISO 8601 date and time (default: now)")

    def handle(self, *args, at=None, **options):
        try:
            instant = parse_instant(at) if at is not None else timezone.now()
        except ValueError as error:
            raise CommandError(f"--at {error}") from None
        raised = queries_raise_automatic(at=instant)
        for query in raised:
            self.stdout.write(f"#{query.pk} {query.rule} patient {query.patient.subject_code}")
        self.stdout.write(f"{len(raised)} queries raised.")
