"""The French catalogue is complete, faithful to its placeholders and compiled.

The sites are French: a string left in English, a fuzzy guess from makemessages, a
placeholder lost in translation (a 500 at render time) or a catalogue edited but not
compiled all reach users. These checks read the files only; `make messages` rewrites them.
"""

from __future__ import annotations

import re
from pathlib import Path

import polib
import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
PO = BASE_DIR / "locale" / "fr" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%[sd]|\{\{\s*[a-z_.]+\s*\}\}")
# {% translate "..." %} with a literal string, as makemessages extracts it.
TRANSLATE_TAG = re.compile(r"""{%\s*(?:translate|trans)\s+"([^"]+)"(?:\s+context\s+"([^"]+)")?""")


@pytest.fixture(scope="module")
def catalogue() -> polib.POFile:
    return polib.pofile(str(PO))


def live(catalogue: polib.POFile) -> list[polib.POEntry]:
    return [entry for entry in catalogue if not entry.obsolete]


def test_every_entry_is_translated_and_none_is_a_fuzzy_guess(catalogue):
    untranslated = [e.msgid for e in live(catalogue) if not e.translated()]
    fuzzy = [e.msgid for e in live(catalogue) if e.fuzzy]
    assert untranslated == []
    assert fuzzy == []


def test_translations_keep_the_placeholders_of_their_source(catalogue):
    wrong = []
    for entry in live(catalogue):
        pairs = (
            [(entry.msgid, entry.msgstr)]
            if not entry.msgid_plural
            else [(entry.msgid_plural, text) for text in entry.msgstr_plural.values()]
        )
        for source, text in pairs:
            # A singular form may leave out the count ("Un patient"), never add one.
            needed = sorted(set(PLACEHOLDER.findall(source)))
            found = sorted(set(PLACEHOLDER.findall(text)))
            if found != needed and not (entry.msgid_plural and set(found) <= set(needed)):
                wrong.append((source, text))
    assert wrong == []


def test_the_compiled_catalogue_matches_the_source(catalogue):
    compiled = {(e.msgctxt, e.msgid): (e.msgstr or e.msgstr_plural) for e in polib.mofile(str(MO))}
    source = {
        (e.msgctxt, e.msgid): (e.msgstr or e.msgstr_plural)
        for e in live(catalogue)
        if e.translated() and not e.fuzzy
    }
    stale = {key for key, text in source.items() if compiled.get(key) != text}
    assert stale == set(), "run `make messages` (compilemessages) after editing django.po"


def test_every_literal_translate_tag_of_the_templates_is_in_the_catalogue(catalogue):
    known = {(e.msgctxt, e.msgid) for e in live(catalogue)}
    missing = []
    for template in sorted((BASE_DIR / "templates").rglob("*.html")):
        for text, context in TRANSLATE_TAG.findall(template.read_text()):
            if (context or None, text) not in known:
                missing.append(f"{template.relative_to(BASE_DIR)}: {text}")
    assert missing == []
