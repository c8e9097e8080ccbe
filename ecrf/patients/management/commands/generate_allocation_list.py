"""Generate a site's allocation list from the command line, as an unblinded user would."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from ecrf.patients.randomisation import allocation_list_generate
from ecrf.studies.models import Site, Study


def lookup(*, study_code: str, site_code: str, username: str):
    try:
        study = Study.objects.get(code=study_code)
    except Study.DoesNotExist:
        raise CommandError(f"No study {study_code!r}.") from None
    try:
        site = Site.objects.get(code=site_code)
    except Site.DoesNotExist:
        raise CommandError(f"No site {site_code!r}.") from None
    try:
        user = get_user_model().objects.get(username=username, is_active=True)
    except get_user_model().DoesNotExist:
        raise CommandError(f"No active user {username!r}.") from None
    return study, site, user


def command_error(exc: ValidationError | PermissionDenied) -> CommandError:
    if isinstance(exc, PermissionDenied):
        return CommandError(str(exc))
    return CommandError("\n".join(exc.messages))


class Command(BaseCommand):
    help = (
        "Generate a site's allocation list (permuted blocks of the protocol's sizes) with a "
        "recorded seed. The user named by --by must be an unblinded data manager or "
        "administrator of the study."
    )

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, help="Registration number, e.g. NCT00479934")
        parser.add_argument("--site", required=True, help="Site code, e.g. BXP")
        parser.add_argument("--size", required=True, type=int, help="At least this many slots")
        parser.add_argument("--seed", type=int, help="Seed (default: a random one, recorded)")
        parser.add_argument("--by", required=True, help="Username of the unblinded user")
        parser.add_argument("--note", default="", help="A note kept with the list")

    def handle(self, *args, **options):
        study, site, user = lookup(
            study_code=options["study"], site_code=options["site"], username=options["by"]
        )
        try:
            allocation_list = allocation_list_generate(
                study=study,
                site=site,
                size=options["size"],
                seed=options["seed"],
                by=user,
                note=options["note"],
            )
        except (ValidationError, PermissionDenied) as exc:
            raise command_error(exc) from None
        # The seed and the arms stay in the database: this output may end up in logs.
        self.stdout.write(
            self.style.SUCCESS(
                f"Allocation list #{allocation_list.pk} for {study.code} at {site.code}: "
                f"{allocation_list.slots.count()} slots (seed recorded)."
            )
        )
