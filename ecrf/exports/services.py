"""The export service: a study's data in the formats asked for, one service for the
command and the screen.

`export_prepare` checks who may export and what was asked for and returns the request,
before anything is written; `export_write` writes it into a folder, one subfolder per
format (`csv/`, `xlsx/`, ...), plus `manifest.json`, and records the export
(`ExportRecord`, pghistory-tracked) in the same transaction; `export_run` does both.
Every format reads the same `Dataset`s (datasets.py), streamed with server-side cursors,
inside one REPEATABLE READ transaction so that every file shows the same instant; each
format's writer lives in `writers/` and reports the rows it writes (`ExportContext.tick`)
for a progress bar.

A cut-off (`as_of`) exports the data as they were at that past instant, read from the
audit trail (snapshot.py); the manifest's `cut_off` says which.

Blinded by default: the forms carry kit numbers, never an arm. An unblinded export, for a
user who sees the allocation, adds the allocation dataset (subject, site, kit, arm) and
says UNBLINDED in its manifest and record.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.accounts.access import can_see_allocation
from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audited
from ecrf.exports import sql_text, writers
from ecrf.exports.datasets import (
    AE_LOG,
    Dataset,
    ae_dataset,
    allocation_dataset,
    form_dataset,
)
from ecrf.exports.dictionary import Variable, exportable_forms, visits_by_form
from ecrf.exports.models import ExportRecord
from ecrf.studies.models import Site

# The formats whose writer is built, in the order they are offered; the others are
# refused by name until they are.
FORMATS = writers.supported()
PLANNED_FORMATS = writers.planned()
# Progress is reported every so many rows (a callback per row would cost more than the row).
PROGRESS_STEP = 500


def software_version() -> str:
    try:
        with open(Path(settings.BASE_DIR) / "pyproject.toml", "rb") as file:
            return tomllib.load(file)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


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
    if not isinstance(as_of, datetime) or timezone.is_naive(as_of):
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


def file_entry(root: Path, path: Path, rows: int | None) -> dict:
    """A written file as the manifest lists it: its path under the export, its rows (None
    for a file that is not a table) and its SHA-256."""
    sha = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            sha.update(block)
    entry = {"name": path.relative_to(root).as_posix(), "sha256": sha.hexdigest()}
    if rows is not None:
        entry["rows"] = rows
    return entry


@dataclass
class ExportRequest:
    """What was asked for, checked: everything a writer needs to know."""

    study: object
    by: object
    now: datetime
    formats: tuple[str, ...]
    sites: list[Site]
    forms: list[str]
    # The forms asked for by name (empty: all of them), as the record keeps them.
    forms_asked: list[str]
    protocols: list
    as_of: datetime | None = None
    unblinded: bool = False
    initials: bool = False
    # The audit trail's date range (format "audit"; None: open-ended).
    audit_from: datetime | None = None
    audit_to: datetime | None = None

    @property
    def cut_off(self) -> datetime:
        return self.as_of or self.now

    @property
    def blinding(self) -> str:
        return "UNBLINDED" if self.unblinded else "BLINDED"


@dataclass
class ExportContext:
    """One export being written: the request, its datasets, where to write, the progress."""

    request: ExportRequest
    root: Path
    datasets: list[Dataset]
    on_progress: Callable[[int, int], None] | None = None
    total: int = 0
    written: int = 0
    _reported: int = field(default=0, repr=False)

    @property
    def study(self):
        return self.request.study

    @property
    def dictionary(self) -> list[Variable]:
        """Every exported variable, keys left out, form by form."""
        return [variable for dataset in self.datasets for variable in dataset.variables]

    def folder(self, fmt: str) -> Path:
        path = self.root / fmt
        path.mkdir(exist_ok=True)
        return path

    def entry(self, path: Path, rows: int | None = None) -> dict:
        return file_entry(self.root, path, rows)

    def tick(self, rows: int = 1) -> None:
        """`rows` more rows written; the progress callback hears of it every PROGRESS_STEP."""
        self.written += rows
        if self.on_progress is not None and self.written - self._reported >= PROGRESS_STEP:
            self._reported = self.written
            self.on_progress(self.written, self.total)


def _check_audit_range(audit_from, audit_to) -> None:
    for name, value in (("audit_from", audit_from), ("audit_to", audit_to)):
        if value is not None and timezone.is_naive(value):
            raise ValidationError(
                {name: _("Audit period: give a date and time with its time zone (ISO 8601).")}
            )
    if audit_from is not None and audit_to is not None and audit_from > audit_to:
        raise ValidationError(
            {
                "audit_to": _(
                    "Audit period: the end (%(to)s) is before the start (%(from)s); give an "
                    "end after the start."
                )
                % {"to": audit_to.isoformat(), "from": audit_from.isoformat()}
            }
        )


def export_require(by, *, study, sites) -> None:
    """Refuse (PermissionDenied) unless `by` may export at every site given (every site of
    the study when none is): the permission table's EXPORT, for asking and downloading."""
    if sites:
        for site in sites:
            require(by, Action.EXPORT, study=study, site=site)
    else:
        require(by, Action.EXPORT, study=study, every_site=True)


def export_prepare(
    *,
    study,
    by,
    formats=("csv",),
    sites=None,
    forms=None,
    as_of=None,
    unblinded: bool = False,
    initials: bool = False,
    audit_from=None,
    audit_to=None,
) -> ExportRequest:
    """Check an export before anything is written; the request to write.

    `sites` and `forms` are codes (None: all of them). Refused (PermissionDenied) unless
    `by` may export at every site asked for (every site of the study when none is named);
    refused (ValidationError keyed by the argument) for an unknown format, site or form, a
    cut-off in the future, an unblinded export by someone who does not see the allocation.
    """
    now = timezone.now()
    chosen_sites = _check_sites(study, sites)
    export_require(by, study=study, sites=chosen_sites)
    formats = _check_formats(formats)
    protocols = [version.protocol for version in study.protocol_versions.order_by("loaded_at")]
    chosen_forms = _check_forms(forms, exportable_forms(protocols, study=study))
    _check_as_of(as_of, now)
    _check_audit_range(audit_from, audit_to)
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
    return ExportRequest(
        study=study,
        by=by,
        now=now,
        formats=formats,
        sites=chosen_sites,
        forms=chosen_forms,
        forms_asked=list(forms or []),
        protocols=protocols,
        as_of=as_of,
        unblinded=unblinded,
        initials=initials,
        audit_from=audit_from,
        audit_to=audit_to,
    )


def _datasets(request: ExportRequest) -> list[Dataset]:
    visits = visits_by_form(request.protocols)
    found = [
        ae_dataset(request.study, request.sites)
        if code == AE_LOG
        else form_dataset(
            code, visits.get(code, []), request.study, request.sites, initials=request.initials
        )
        for code in request.forms
    ]
    if request.unblinded:
        found.append(allocation_dataset(request.study, request.sites))
    # A past cut-off: every dataset reads its rows as they were then (snapshot.py).
    for dataset in found:
        dataset.as_of = request.as_of
    return found


def _check_folder(out: Path) -> None:
    # An earlier export's files left beside this one's (an unblinded allocation beside a
    # blinded export) would pass for part of it.
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValidationError(
            {
                "out_dir": _("Folder: %(folder)s is not an empty folder; give a new or empty one.")
                % {"folder": out}
            }
        )


@contextmanager
def _snapshot():
    """One transaction for the whole export, REPEATABLE READ so that every file shows the
    same instant (inside a caller's transaction, a savepoint of it)."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cursor:
            if outermost:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            # The text writers take a date's own text (sql_text.py): ISO 8601 whatever the
            # server's default style, for this transaction only.
            cursor.execute("SET LOCAL DateStyle = 'ISO'")
        if not outermost:
            yield
            return
        # Its snapshot shared: other connections may read the same instant beside it.
        with sql_text.snapshot_shared():
            yield


def export_write(
    request: ExportRequest, out_dir, *, on_progress: Callable[[int, int], None] | None = None
) -> ExportRecord:
    """Write a checked export into `out_dir` (a new or empty folder); its audit record.

    `on_progress(written, total)` hears of the rows written every PROGRESS_STEP rows and
    at the end, from inside the export's transaction (so it must not report through the
    database: another connection would not see it before the end).
    """
    out = Path(out_dir)
    _check_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    with _snapshot():
        context = ExportContext(
            request=request, root=out, datasets=_datasets(request), on_progress=on_progress
        )
        chosen = [writers.writer(fmt) for fmt in request.formats]
        context.total = sum(writer.total(context) for writer in chosen)
        files = []
        for writer in chosen:
            files += writer.write(context)
        if on_progress is not None:
            on_progress(context.written, context.total)
        return _record(request, out, files)


def _record(request: ExportRequest, out: Path, files: list[dict]) -> ExportRecord:
    study, by, now = request.study, request.by, request.now
    manifest = {
        "study": study.code,
        "protocol_versions": list(
            study.protocol_versions.order_by("loaded_at").values_list("version", flat=True)
        ),
        "cut_off": request.cut_off.astimezone(UTC).isoformat(),
        "exported_by": by.get_username(),
        "exported_at": now.astimezone(UTC).isoformat(),
        "software_version": software_version(),
        "blinding": request.blinding,
        "formats": list(request.formats),
        "sites": [site.code for site in request.sites] or "all",
        "forms": request.forms,
        "initials": request.initials,
        "files": files,
    }
    if "audit" in request.formats or "odm-audit" in request.formats:
        manifest["audit_period"] = {
            "from": request.audit_from.astimezone(UTC).isoformat() if request.audit_from else None,
            "to": request.audit_to.astimezone(UTC).isoformat() if request.audit_to else None,
        }
    text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")
    what = "UNBLINDED export" if request.unblinded else "blinded export"
    with audited(by=by, reason=f"{what} of {study.code} ({', '.join(request.formats)})"):
        return ExportRecord.objects.create(
            by=by,
            at=now,
            study=study,
            formats=list(request.formats),
            sites=[site.code for site in request.sites],
            forms=request.forms_asked,
            as_of=request.as_of,
            blinded=not request.unblinded,
            manifest_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            files=[*files, {"name": "manifest.json"}],
        )


def export_run(*, by, out_dir, on_progress=None, **asked) -> ExportRecord:
    """Check, then write, an export (export_prepare's arguments) into `out_dir`.

    Nothing is written before every check, the folder's included, has passed.
    """
    request = export_prepare(by=by, **asked)
    _check_folder(Path(out_dir))
    return export_write(request, out_dir, on_progress=on_progress)
