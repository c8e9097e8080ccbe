"""Date pickers keep their value on French pages (the browser only takes ISO values)."""

from datetime import date, datetime

import pytest
from django.utils import translation

from ecrf.crfs.views import VisitDateForm
from ecrf.patients.forms import EndOfStudyForm, EnrolForm

DAY = date(2026, 12, 2)


@pytest.mark.parametrize(
    ("form_class", "name"),
    [(EnrolForm, "day0_date"), (EndOfStudyForm, "end_date"), (VisitDateForm, "visit_date")],
)
@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_date_renders_iso_in_every_language_and_parses_back(form_class, name, language):
    with translation.override(language):
        html = str(form_class(initial={name: DAY})[name])
        assert 'type="date"' in html
        assert 'value="2026-12-02"' in html
        bound = form_class(data={name: "2026-12-02"})
        bound.is_valid()
        assert name not in bound.errors
        assert bound.cleaned_data[name] == DAY


def test_a_datetime_picker_renders_iso_minutes_in_french():
    from django import forms

    from ecrf.core.widgets import DateTimeInput

    class When(forms.Form):
        at = forms.DateTimeField(widget=DateTimeInput())

    with translation.override("fr"):
        html = str(When(initial={"at": datetime(2026, 12, 2, 14, 5)})["at"])
    assert 'type="datetime-local"' in html
    assert 'value="2026-12-02T14:05"' in html


def test_the_adverse_event_dates_render_iso_on_french_pages():
    from ecrf.safety.forms import AdverseEventForm

    form = AdverseEventForm(
        initial={"end_date": DAY, "aware_date": DAY}, zone="Europe/Paris", editing=True
    )
    with translation.override("fr"):
        assert 'value="2026-12-02"' in str(form["end_date"])
        assert 'value="2026-12-02"' in str(form["aware_date"])
