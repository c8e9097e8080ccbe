"""Import a site's allocation list from the statistician's CSV file."""

from __future__ import annotations

import csv
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from ecrf.patients.management.commands.generate_allocation_list import command_error, lookup
from ecrf.patients.randomisation import IMPORT_COLUMNS, allocation_list_import


class Command(BaseCommand):
    help = (
        "Import a site's allocation list from a CSV file with the columns "
        f"{', '.join(IMPORT_COLUMNS)} (header on the first line). Nothing is saved unless "
        "the whole file is valid. The user named by --by must be an unblinded data manager "
        "or administrator of the study."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="The CSV file (UTF-8, comma-separated)")
        parser.add_argument("--study", required=True, help="Registration number, e.g. NCT00479934")
        parser.add_argument("--site", required=True, help="Site code, e.g. BXP")
        parser.add_argument("--by", required=True, help="Username of the unblinded user")
        parser.add_argument("--note", default="", help="A note kept with the list")

    def handle(self, *args, **options):
        study, site, user = lookup(
            study_code=options["study"], site_code=options["site"], username=options["by"]
        )
        path: Path = options["file"]
        try:
            # utf-8-sig: spreadsheets often start a CSV file with a byte order mark.
            with path.open(newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from None
        try:
            allocation_list = allocation_list_import(
                study=study, site=site, rows=rows, by=user, note=options["note"]
            )
        except (ValidationError, PermissionDenied) as exc:
            raise command_error(exc) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Allocation list #{allocation_list.pk} imported for {study.code} at "
                f"{site.code}: {allocation_list.slots.count()} slots."
            )
        )
