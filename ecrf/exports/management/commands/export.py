"""`python manage.py export`: the export service from the command line."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from ecrf.exports.services import FORMATS, export_run
from ecrf.studies.models import Study


def _message(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(str(m) for messages in exc.message_dict.values() for m in messages)
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = "Export a study's forms, their data dictionary and a manifest into a folder."

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, help="The study's registration number.")
        parser.add_argument(
            "--format",
            action="append",
            dest="formats",
            help=f"A format (repeatable); default csv. Supported: {', '.join(FORMATS)}.",
        )
        parser.add_argument("--out", required=True, help="The folder to write into.")
        parser.add_argument("--site", action="append", dest="sites", help="A site code.")
        parser.add_argument("--form", action="append", dest="forms", help="A form code.")
        parser.add_argument("--as-of", dest="as_of", help="A cut-off, ISO 8601 with time zone.")
        parser.add_argument("--unblinded", action="store_true", help="Add the allocation arms.")
        parser.add_argument("--user", required=True, help="Who exports (their username).")

    def handle(self, *args, **options):
        study = Study.objects.filter(code=options["study"]).first()
        if study is None:
            known = ", ".join(Study.objects.values_list("code", flat=True)) or "none"
            raise CommandError(f"Study: {options['study']} is unknown; choose among {known}.")
        user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"User: {options['user']} is not an active account.")
        as_of = None
        if options["as_of"]:
            try:
                as_of = parse_datetime(options["as_of"])
            except ValueError:
                as_of = None
            if as_of is None:
                raise CommandError(
                    f"Cut-off: {options['as_of']} is not a date and time in ISO 8601 "
                    "(2026-12-01T00:00:00+00:00)."
                )
        try:
            record = export_run(
                study=study,
                by=user,
                formats=options["formats"] or ["csv"],
                sites=options["sites"],
                forms=options["forms"],
                as_of=as_of,
                unblinded=options["unblinded"],
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
