"""JSON bodies: refused (400) when a string holds a control character, wherever it is.

PostgreSQL refuses a NUL in text and no answer has a use for the others; the screens'
posts meet ecrf.core.middleware's refusal, which a JSON body passes. Tabs and line breaks
stay: a narrative has paragraphs.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _junk(data, path: str = "") -> str | None:
    """Where the first string with a control character is ("values.q1"), or None."""
    if isinstance(data, str):
        return path or "(body)" if CONTROL_CHARACTER.search(data) else None
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        if isinstance(key, str) and CONTROL_CHARACTER.search(key):
            return f"{path}.{key!r}".lstrip(".")
        found = _junk(value, f"{path}.{key}".lstrip("."))
        if found:
            return found
    return None


class CleanJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if (where := _junk(data)) is not None:
            raise ParseError(_("%(where)s: no control character is allowed.") % {"where": where})
        return data
