"""Browser date pickers that keep their value in every language.

`<input type="date">` and `type="datetime-local"` only accept ISO values; Django would
render a bound value in the active locale's format (02/12/2026 in French), which the
browser discards, so a reopened form would show an empty date. These widgets always
render ISO; the fields still accept the locale's formats when typed by other clients.
"""

from __future__ import annotations

from django import forms


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")
