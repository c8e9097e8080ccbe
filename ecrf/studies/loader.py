"""Load a protocol file into the database: the study, its sites, and a protocol version.

Loading is idempotent so deployments and `make demo` can run it every time, and
versioned so an amendment never rewrites what earlier data were entered under: each
version is its own row, and patients point at the row they were screened under.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from ecrf.audit.context import audited
from ecrf.studies.models import ProtocolVersion, Site, Study, StudySite
from ecrf.studies.protocol import Protocol, ProtocolError, display_name, parse_protocol

PROTOCOLS_DIR = Path(__file__).resolve().parent / "protocols"


@dataclass(frozen=True)
class LoadResult:
    protocol_version: ProtocolVersion
    created: bool
    # A loaded version given new translations, reminder settings or an SDV plan in place.
    updated: tuple[str, ...] = ()

    @property
    def translated(self) -> bool:
        return "translations" in self.updated


def protocol_files() -> list[Path]:
    """The protocol files shipped with the code, in a stable order."""
    return sorted(PROTOCOLS_DIR.glob("*.yaml"))


def load_protocol(path: Path | str, *, by=None) -> LoadResult:
    """Validate a protocol file and record it; nothing is written when it is refused.

    The same file again is a no-op. A new `version` label adds a protocol version and
    leaves the earlier ones as they were. The same label with a different definition is
    refused: a changed protocol must be a new, identifiable version. A file whose only
    changes are comments or layout defines the same protocol, so it counts as loaded.
    A file whose only changes are translations (`label_fr`, `name_fr`, `text_fr`) updates
    the loaded version in place, audited: the English wording, the protocol's own, is
    unchanged, and patients screened under that version read their screens in French too.
    The `reminders:` and `sdv:` sections are updated in place the same way: they say when
    the sites' staff are told and how the data are reviewed, not what the protocol collects.
    """
    source = display_name(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ProtocolError(source, [("", f"cannot read the file: {exc.strerror}")]) from None
    protocol = parse_protocol(data, source=source)
    sha256 = hashlib.sha256(data).hexdigest()
    definition = protocol.model_dump(mode="json")

    with transaction.atomic():
        study = Study.objects.select_for_update().filter(code=protocol.study.code).first()
        if study is not None:
            loaded = _already_loaded(study, protocol, sha256, definition, source)
            if loaded is not None:
                changed = _in_place_changes(loaded.definition, definition)
                if changed:
                    reason = f"{' and '.join(changed)} of {source} v{protocol.version}"
                    with audited(by=by, reason=reason):
                        loaded.definition, loaded.sha256 = definition, sha256
                        loaded.save(update_fields=["definition", "sha256"])
                    return LoadResult(loaded, created=False, updated=tuple(changed))
                return LoadResult(loaded, created=False)
        with audited(by=by, reason=f"load protocol {source} v{protocol.version}"):
            study = _save_study(study, protocol, source)
            _save_sites(study, protocol, source)
            version = ProtocolVersion.objects.create(
                study=study,
                version=protocol.version,
                effective_date=protocol.effective_date,
                source_path=_source_path(path),
                sha256=sha256,
                definition=definition,
                loaded_by=by,
            )
    return LoadResult(version, created=True)


def _already_loaded(
    study: Study, protocol: Protocol, sha256: str, definition: dict, source: str
) -> ProtocolVersion | None:
    versions = study.protocol_versions.all()
    same_file = next((v for v in versions if v.sha256 == sha256), None)
    if same_file is not None:
        return same_file
    same_label = next((v for v in versions if v.version == protocol.version), None)
    if same_label is not None:
        if _protocol_content(same_label.definition) == _protocol_content(definition):
            return same_label
        raise ProtocolError(
            source,
            [
                (
                    "version",
                    f"version {protocol.version} of {study.code} is already loaded with "
                    "different content; give the amendment a new version",
                )
            ],
        )
    current = study.current_protocol
    if current is not None and protocol.effective_date < current.effective_date:
        raise ProtocolError(
            source,
            [
                (
                    "effective_date",
                    f"{protocol.effective_date} is before {current.effective_date}, when the "
                    f"loaded version {current.version} took effect; load versions in order",
                )
            ],
        )
    return None


TRANSLATIONS = frozenset({"label_fr", "name_fr", "text_fr"})
# Sections that change without an amendment: when people are reminded and how the data are
# reviewed (the SDV plan), not what is collected.
OPERATIONAL = frozenset({"reminders", "sdv"})


def _protocol_content(definition: dict) -> dict:
    """What an amendment must change: the definition without translations and settings."""
    return _untranslated({k: v for k, v in definition.items() if k not in OPERATIONAL})


def _in_place_changes(stored: dict, definition: dict) -> list[str]:
    """What differs that a loaded version takes in place ("translations", "reminders", "sdv")."""
    changed = ["translations"] if _translations(stored) != _translations(definition) else []
    changed += [k for k in sorted(OPERATIONAL) if stored.get(k) != definition.get(k)]
    return changed


def _untranslated(value):
    """A definition without its translations: what the protocol says, in its own words."""
    if isinstance(value, dict):
        return {k: _untranslated(v) for k, v in value.items() if k not in TRANSLATIONS}
    if isinstance(value, list):
        return [_untranslated(v) for v in value]
    return value


def _translations(value, path=()) -> dict:
    """Every translation given in a definition, by its place (absent and null alike)."""
    found = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key in TRANSLATIONS:
                if item is not None:
                    found[(*path, key)] = item
            else:
                found |= _translations(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found |= _translations(item, (*path, i))
    return found


def _save_study(study: Study | None, protocol: Protocol, source: str) -> Study:
    spec = protocol.study
    values = {
        "acronym": spec.acronym,
        "title": spec.title,
        "sponsor": spec.sponsor,
        "design": spec.design,
        "blinded": spec.blinded,
        "target_enrolment": spec.target_enrolment,
    }
    if study is None:
        return Study.objects.create(code=spec.code, **values)
    # Blinding is the file's only when the study is created: an amendment cannot unblind
    # a study (that is `study_unblind`, after the database lock), nor blind it again.
    if study.blinded and not spec.blinded:
        raise ProtocolError(
            source,
            [
                (
                    "study.blinded",
                    f"{study.code} is blinded: an amendment cannot unblind it; the study's "
                    "administrator unblinds it after the database lock",
                )
            ],
        )
    del values["blinded"]
    changed = [name for name, value in values.items() if getattr(study, name) != value]
    if changed:  # saving unchanged rows would fill the audit trail with empty events
        for name in changed:
            setattr(study, name, values[name])
        study.save(update_fields=changed)
    return study


def _save_sites(study: Study, protocol: Protocol, source: str) -> None:
    """Add the listed sites; stop recruitment (never delete) at sites an amendment drops.

    A site row is shared by every study run there, so a file may only change a site's
    name or city when no other study uses it.
    """
    problems = []
    listed = []
    for i, spec in enumerate(protocol.sites):
        values = {
            "name": spec.name,
            "city": spec.city,
            "country": spec.country,
            "timezone": spec.timezone,
        }
        site = Site.objects.filter(code=spec.code).first()
        if site is None:
            site = Site.objects.create(code=spec.code, **values)
        else:
            changed = [name for name, value in values.items() if getattr(site, name) != value]
            others = list(
                Study.objects.filter(study_sites__site=site)
                .exclude(pk=study.pk)
                .values_list("code", flat=True)
            )
            if changed and others:
                problems.append(
                    (
                        f"sites[{i}]",
                        f"site {site.code} is already {site.name!r} ({site.city}) in "
                        f"{', '.join(others)}; use the same {', '.join(changed)} or another code",
                    )
                )
                continue
            if changed:
                for name in changed:
                    setattr(site, name, values[name])
                site.save(update_fields=changed)
        listed.append(site.pk)
        link, created = StudySite.objects.get_or_create(study=study, site=site)
        if not created and not link.active:  # the amendment is the list of recruiting sites
            link.active = True
            link.save(update_fields=["active"])
    if problems:
        raise ProtocolError(source, problems)
    for link in StudySite.objects.filter(study=study, active=True).exclude(site__in=listed):
        link.active = False
        link.save(update_fields=["active"])


def _source_path(path: Path | str) -> str:
    """The file relative to the project when it is inside it, so rows read the same anywhere."""
    resolved = Path(path).resolve()
    try:
        shown = str(resolved.relative_to(Path(settings.BASE_DIR).resolve()))
    except ValueError:
        shown = str(path)
    max_length = ProtocolVersion._meta.get_field("source_path").max_length
    return shown if len(shown) <= max_length else resolved.name
