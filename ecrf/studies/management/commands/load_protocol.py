"""`python manage.py load_protocol PATH [PATH ...]` or `--all`: record protocol files.

Safe to run on every deployment: files already loaded are reported and left alone.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ecrf.studies.loader import load_protocol, protocol_files
from ecrf.studies.protocol import ProtocolError, display_name, read_protocol


class Command(BaseCommand):
    help = (
        "Validate protocol files (YAML) and load them: a file loaded before is left alone, "
        "a new version label adds a protocol version."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="*", type=Path, metavar="PATH")
        parser.add_argument(
            "--all",
            action="store_true",
            help="Load every file of ecrf/studies/protocols/.",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Only validate the files; write nothing to the database.",
        )
        parser.add_argument(
            "--by", metavar="USERNAME", help="Record this user as the one who loaded them."
        )

    def handle(self, *args, paths, **options):
        paths = list(paths) + (protocol_files() if options["all"] else [])
        if not paths:
            raise CommandError("Give one or more protocol files, or --all.")
        by = self._user(options["by"]) if options["by"] else None
        errors = []
        for path in paths:
            try:
                if options["check"]:
                    protocol = read_protocol(path)
                    self.stdout.write(
                        f"{display_name(path)}: valid ({protocol.study.code} v{protocol.version})"
                    )
                    continue
                result = load_protocol(path, by=by)
            except ProtocolError as exc:
                errors.append(str(exc))
                continue
            version = result.protocol_version
            label = f"{version.study.code} v{version.version}"
            if result.created:
                self.stdout.write(self.style.SUCCESS(f"{label} loaded (new version)"))
            elif result.updated:
                updated = " and ".join(result.updated)
                self.stdout.write(self.style.SUCCESS(f"{label} {updated} updated"))
            else:
                self.stdout.write(f"{label} already loaded, nothing to do")
        if errors:
            # Each file is its own transaction: the valid ones above stay loaded.
            raise CommandError("\n".join(errors))

    def _user(self, username: str):
        try:
            return get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {username!r}.") from None
