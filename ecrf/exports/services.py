"""The export service: a study's forms as files, one service for the command and (later)
the screen.

`export_run` checks who may export and what was asked for before it writes anything, then
writes, while it reads, one CSV per form (RFC 4180, UTF-8), `dictionary.csv` and
`manifest.json`, and records the export (`ExportRecord`, pghistory-tracked) in the same
transaction. Rows are read with a server-side cursor (`.iterator()`), so memory stays
flat whatever the study's size.

Blinded by default: the forms carry kit numbers, never an arm, and nothing else is
exported. An unblinded export, for a user who sees the allocation, adds
`allocation.csv` (subject, site, kit, arm) and says UNBLINDED in its manifest and record.
"""

from __future__ import annotations

import csv
import hashlib
import json
import tomllib
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.accounts.access import can_see_allocation
from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audited
from ecrf.crfs.models import FORM_MODELS
from ecrf.exports.dictionary import (
    DICTIONARY_COLUMNS,
    KEY_COLUMNS,
    dictionary_row,
    exportable_forms,
    variables,
    visits_by_form,
)
from ecrf.exports.models import ExportRecord
from ecrf.patients.models import Allocation
from ecrf.studies.models import Site

FORMATS = ("csv",)
# Issue 14's other formats, refused by name until they are built.
PLANNED_FORMATS = ("xlsx", "sas", "stata", "spss", "odm", "odm-audit", "sdtm", "audit")
CHUNK_SIZE = 2000


def software_version() -> str:
    try:
        with open(Path(settings.BASE_DIR) / "pyproject.toml", "rb") as file:
            return tomllib.load(file)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def cell(value) -> str:
    """A value as the CSV writes it: codes as codes, ISO 8601 dates, empty for missing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _allowed(items: Iterable[str]) -> str:
    return ", ".join(items) or "—"


def _check_formats(formats) -> tuple[str, ...]:
    formats = tuple(formats)
    if not formats:
        raise ValidationError(
            {
                "formats": _("Formats: choose at least one of %(allowed)s.")
                % {"allowed": _allowed(FORMATS)}
            }
        )
    for fmt in formats:
        if fmt in FORMATS:
            continue
        if fmt in PLANNED_FORMATS:
            message = _("Format: %(format)s is not supported yet; choose %(allowed)s.")
        else:
            message = _("Format: %(format)s is not a known format; choose %(allowed)s.")
        raise ValidationError({"formats": message % {"format": fmt, "allowed": _allowed(FORMATS)}})
    return tuple(dict.fromkeys(formats))


def _check_sites(study, sites) -> list[Site]:
    if sites is None:
        return []
    known = {site.code: site for site in Site.objects.filter(study_sites__study=study)}
    for code in sites:
        if code not in known:
            raise ValidationError(
                {
                    "sites": _(
                        "Site: %(site)s does not take part in %(study)s; choose among %(allowed)s."
                    )
                    % {"site": code, "study": study.code, "allowed": _allowed(sorted(known))}
                }
            )
    return [known[code] for code in dict.fromkeys(sites)]


def _check_forms(forms, available: list[str]) -> list[str]:
    if forms is None:
        return available
    for code in forms:
        if code not in available:
            raise ValidationError(
                {
                    "forms": _(
                        "Form: %(form)s is not a form this study exports; choose among %(allowed)s."
                    )
                    % {"form": code, "allowed": _allowed(available)}
                }
            )
    return list(dict.fromkeys(forms))


def _check_as_of(as_of, now) -> None:
    if as_of is None:
        return
    if timezone.is_naive(as_of):
        raise ValidationError(
            {"as_of": _("Cut-off: give a date and time with its time zone (ISO 8601).")}
        )
    if as_of > now:
        raise ValidationError(
            {
                "as_of": _("Cut-off: %(as_of)s is in the future; give an instant before now.")
                % {"as_of": as_of.isoformat()}
            }
        )
    # The data as they were at a past instant need the audit trail replayed per form:
    # refused rather than exported wrong.
    raise ValidationError(
        {
            "as_of": _(
                "Cut-off: an export of the data as they were at a past instant is not "
                "supported yet; leave the cut-off out to export the data as they are now."
            )
        }
    )


class _HashingWriter:
    """A text file that counts the SHA-256 of what is written to it."""

    def __init__(self, file):
        self.file = file
        self.sha = hashlib.sha256()

    def write(self, text: str) -> int:
        self.sha.update(text.encode("utf-8"))
        return self.file.write(text)


def _write_csv(path: Path, header: Iterable[str], rows: Iterator[Iterable]) -> dict:
    """Write the rows as they come; the file's name, row count and SHA-256."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as file:
        hashing = _HashingWriter(file)
        writer = csv.writer(hashing, lineterminator="\r\n")  # RFC 4180
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return {"name": path.name, "rows": count, "sha256": hashing.sha.hexdigest()}


def _form_rows(form_code: str, study, sites: list[Site], columns: list[str]) -> Iterator[list]:
    model = FORM_MODELS[form_code]
    rows = model.objects.filter(patient__study=study)
    if sites:
        rows = rows.filter(patient__site__in=sites)
    lookups = [
        "patient__subject_code",
        "patient__site__code",
        "visit__code",
        "visit__visit_date",
        "status",
        *columns,
    ]
    ordered = rows.order_by("patient__subject_code", "visit__sequence", "visit__repeat", "pk")
    for values in ordered.values_list(*lookups).iterator(chunk_size=CHUNK_SIZE):
        yield [cell(value) for value in values]


def _allocation_rows(study, sites: list[Site]) -> Iterator[list]:
    rows = Allocation.objects.filter(study=study, patient__isnull=False)
    if sites:
        rows = rows.filter(site__in=sites)
    ordered = rows.order_by("patient__subject_code").values_list(
        "patient__subject_code", "site__code", "kit_number", "arm"
    )
    for values in ordered.iterator(chunk_size=CHUNK_SIZE):
        yield [cell(value) for value in values]


def export_run(
    *,
    study,
    by,
    formats=("csv",),
    sites=None,
    forms=None,
    as_of=None,
    unblinded: bool = False,
    out_dir,
) -> ExportRecord:
    """Export the study's forms into `out_dir`; the export's audit record.

    `sites` and `forms` are codes (None: all of them). Refused (PermissionDenied) unless
    `by` may export at every site asked for (every site of the study when none is named);
    refused (ValidationError keyed by the argument) for an unknown format, site or form, a
    cut-off, an unblinded export by someone who does not see the allocation, or a folder
    that is not empty. Nothing is
    written before every check has passed.
    """
    now = timezone.now()
    chosen_sites = _check_sites(study, sites)
    if chosen_sites:
        for site in chosen_sites:
            require(by, Action.EXPORT, study=study, site=site)
    else:
        require(by, Action.EXPORT, study=study, every_site=True)
    formats = _check_formats(formats)
    protocols = [version.protocol for version in study.protocol_versions.order_by("loaded_at")]
    chosen_forms = _check_forms(forms, exportable_forms(protocols))
    _check_as_of(as_of, now)
    if unblinded and not can_see_allocation(by, study=study):
        raise ValidationError(
            {
                "unblinded": _(
                    "Unblinded: you do not see the allocation of %(study)s; export it "
                    "blinded (kit numbers, no arm)."
                )
                % {"study": study.code}
            }
        )

    out = Path(out_dir)
    # An earlier export's files left beside this one's (an unblinded allocation.csv
    # beside a blinded export) would pass for part of it.
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValidationError(
            {
                "out_dir": _("Folder: %(folder)s is not an empty folder; give a new or empty one.")
                % {"folder": out}
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    visits = visits_by_form(protocols)
    files = []
    with transaction.atomic():
        dictionary = []
        for form_code in chosen_forms:
            form_variables = list(variables(form_code, visits.get(form_code, [])))
            dictionary += form_variables
            files.append(
                _write_csv(
                    out / f"{form_code}.csv",
                    [*KEY_COLUMNS, *(v.name for v in form_variables)],
                    _form_rows(form_code, study, chosen_sites, [v.lookup for v in form_variables]),
                )
            )
        files.append(
            _write_csv(out / "dictionary.csv", DICTIONARY_COLUMNS, map(dictionary_row, dictionary))
        )
        if unblinded:
            files.append(
                _write_csv(
                    out / "allocation.csv",
                    ("subject_code", "site", "kit_number", "arm"),
                    _allocation_rows(study, chosen_sites),
                )
            )
        manifest = {
            "study": study.code,
            "protocol_versions": list(
                study.protocol_versions.order_by("loaded_at").values_list("version", flat=True)
            ),
            "cut_off": now.astimezone(UTC).isoformat(),
            "exported_by": by.get_username(),
            "exported_at": now.astimezone(UTC).isoformat(),
            "software_version": software_version(),
            "blinding": "UNBLINDED" if unblinded else "BLINDED",
            "formats": list(formats),
            "sites": [site.code for site in chosen_sites] or "all",
            "forms": chosen_forms,
            "files": files,
        }
        text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
        (out / "manifest.json").write_text(text, encoding="utf-8")
        what = "UNBLINDED export" if unblinded else "blinded export"
        with audited(by=by, reason=f"{what} of {study.code} ({', '.join(formats)})"):
            record = ExportRecord.objects.create(
                by=by,
                at=now,
                study=study,
                formats=list(formats),
                sites=[site.code for site in chosen_sites],
                forms=list(forms or []),
                as_of=as_of,
                blinded=not unblinded,
                manifest_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                files=[*files, {"name": "manifest.json"}],
            )
    return record
