"""`python manage.py export`: the export service from the command line."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from ecrf.exports.services import FORMATS, PLANNED_FORMATS, export_run
from ecrf.studies.models import Study


def _message(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(str(m) for messages in exc.message_dict.values() for m in messages)
    return " ".join(exc.messages)


def _instant(text: str | None, what: str):
    """An ISO 8601 date and time from the command line (None when not given)."""
    if not text:
        return None
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None:
        raise CommandError(
            f"{what}: {text} is not a date and time in ISO 8601 (2026-12-01T00:00:00+00:00)."
        )
    return value


class Command(BaseCommand):
    help = "Export a study's forms, their data dictionary and a manifest into a folder."

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, help="The study's registration number.")
        parser.add_argument(
            "--format",
            action="append",
            dest="formats",
            help=f"A format (repeatable); default csv. Supported: {', '.join(FORMATS)}."
            + (f" Not yet: {', '.join(PLANNED_FORMATS)}." if PLANNED_FORMATS else ""),
        )
        parser.add_argument("--out", required=True, help="The folder to write into.")
        parser.add_argument("--site", action="append", dest="sites", help="A site code.")
        parser.add_argument("--form", action="append", dest="forms", help="A form code.")
        parser.add_argument("--as-of", dest="as_of", help="A cut-off, ISO 8601 with time zone.")
        parser.add_argument("--unblinded", action="store_true", help="Add the allocation arms.")
        parser.add_argument(
            "--with-initials",
            action="store_true",
            dest="initials",
            help="Add the patients' initials (a near-identifier, left out by default).",
        )
        parser.add_argument(
            "--from", dest="audit_from", help="Audit trail from (ISO 8601 with time zone)."
        )
        parser.add_argument(
            "--to", dest="audit_to", help="Audit trail until (ISO 8601 with time zone)."
        )
        parser.add_argument("--user", required=True, help="Who exports (their username).")

    def handle(self, *args, **options):
        study = Study.objects.filter(code=options["study"]).first()
        if study is None:
            known = ", ".join(Study.objects.values_list("code", flat=True)) or "none"
            raise CommandError(f"Study: {options['study']} is unknown; choose among {known}.")
        user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"User: {options['user']} is not an active account.")
        as_of = _instant(options["as_of"], "Cut-off")
        audit_from = _instant(options["audit_from"], "Audit period start")
        audit_to = _instant(options["audit_to"], "Audit period end")
        try:
            record = export_run(
                study=study,
                by=user,
                formats=options["formats"] or ["csv"],
                sites=options["sites"],
                forms=options["forms"],
                as_of=as_of,
                unblinded=options["unblinded"],
                initials=options["initials"],
                audit_from=audit_from,
                audit_to=audit_to,
                out_dir=options["out"],
            )
        except ValidationError as exc:
            raise CommandError(_message(exc)) from None
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        blinding = "blinded" if record.blinded else "UNBLINDED"
        self.stdout.write(f"Exported {study.code} ({blinding}) into {options['out']}:")
        for file in record.files:
            if "rows" in file:
                self.stdout.write(f"  {file['name']}: {file['rows']} rows")
        self.stdout.write(f"  manifest.json: sha256 {record.manifest_sha256}")
