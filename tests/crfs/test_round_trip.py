"""Every stored value survives being shown and saved again, for every form of the registry.

A form is saved with values of every kind hypothesis can draw for its fields (blank, yes,
no, 0, decimals, dates, choices, accented text), then reopened as the investigator sees it
and posted back exactly as the page rendered it, with the reason for change a second save
asks for. Nothing may change in the database and no audit event may be written: a page
that shows a stored value wrongly (a "Yes" shown as "—", a decimal reformatted) would
otherwise erase it on the next correction. Parametrised over FORM_MODELS, so a form added
to the registry is covered the day it is added.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import connection, models
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecrf.crfs.forms import editable_fields
from ecrf.crfs.models import FORM_MODELS, allocated_kit, dispensed_kits, form_model
from ecrf.crfs.services import crf_save
from ecrf.patients.models import Deviation, Patient, Visit
from ecrf.patients.services import patient_create
from ecrf.patients.visits import visit_record_date
from tests.clock import TODAY
from tests.factories import PatientFactory, VisitFactory

pytestmark = pytest.mark.django_db

SCREENED = TODAY - timedelta(days=60)
# Letters a French site types, with punctuation; no leading or trailing space (the form
# strips them on the first save, which is the form's business, not a round-trip loss).
ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 éèêëàâçîïôùûüÉÈÇœ'’-.,;:()/%«»"
)
# Form code -> (study, group, visit the form is entered at).
WHERE = {
    "consent": ("rct", "", "SCR"),
    "demographics": ("rct", "", "SCR"),
    "medical_history": ("rct", "", "SCR"),
    "eligibility": ("rct", "", "SCR"),
    "mrss": ("rct", "", "SCR"),
    "echocardiography": ("rct", "", "SCR"),
    "safety_labs": ("rct", "", "SCR"),
    "pregnancy_test": ("rct", "", "SCR"),
    "skin_biopsy": ("rct", "", "M0"),
    "dlqi": ("rct", "", "M0"),
    "haq": ("rct", "", "M0"),
    "drug_dispensing": ("rct", "", "M0"),
    "drug_accountability": ("rct", "", "M1"),
    "clinical_characteristics": ("cohort", "SSC", "V0"),
    "ssc_classification": ("cohort", "SSC", "V0"),
    "sle_classification": ("cohort", "SLE", "V0"),
    "blood_sample": ("cohort", "SSC", "V0"),
    "mdm_cytokines": ("cohort", "SSC", "LAB"),
    "mdm_flow": ("cohort", "SSC", "LAB"),
}
VISIT_DAY = {"SCR": SCREENED, "V0": SCREENED, "M0": SCREENED + timedelta(days=10)}
VISIT_DAY["M1"] = VISIT_DAY["LAB"] = SCREENED + timedelta(days=40)
ROUND_TRIP = settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,  # nothing written to .hypothesis/ in a shared tree
)


def test_every_form_of_the_registry_has_a_place_here():
    assert set(WHERE) == set(FORM_MODELS)


# -- values a form may hold -------------------------------------------------------------------


def _bounds(field):
    low = next((v.limit_value for v in field.validators if isinstance(v, MinValueValidator)), None)
    high = next((v.limit_value for v in field.validators if isinstance(v, MaxValueValidator)), None)
    return low, high


def _blank(field):
    return None if field.null else ""


def field_values(field, *, history: bool):
    """A strategy for the values this model field accepts, blank included."""
    blank = st.just(_blank(field))
    if field.choices:
        return st.sampled_from([_blank(field), *(value for value, _label in field.choices)])
    if isinstance(field, models.BooleanField):
        return st.sampled_from([None, True, False]) if field.null else st.booleans()
    if isinstance(field, models.DecimalField):
        low, high = _bounds(field)
        scale = 10**field.decimal_places
        top = 10 ** (field.max_digits - field.decimal_places) * scale - 1
        low = int(Decimal(low if low is not None else 0) * scale)
        high = min(top, int(Decimal(high) * scale)) if high is not None else top
        digits = st.one_of(st.sampled_from([low, high]), st.integers(low, high))
        return blank | digits.map(lambda n: Decimal(n).scaleb(-field.decimal_places))
    if isinstance(field, models.IntegerField):
        low, high = _bounds(field)
        return blank | st.integers(low if low is not None else 0, high if high is not None else 999)
    if isinstance(field, models.DateField):
        start = date(1990, 1, 1) if history else VISIT_DAY["SCR"]
        return blank | st.dates(min_value=start, max_value=TODAY)
    if isinstance(field, models.CharField | models.TextField):
        if any(isinstance(v, RegexValidator) for v in field.validators):
            return st.text(alphabet="ABCxyz", max_size=3)  # initials: letters
        size = min(field.max_length or 300, 300)
        return st.text(alphabet=ALPHABET, max_size=size).map(str.strip)
    raise AssertionError(f"no strategy for {field!r}: add one so the form is covered")


@st.composite
def answers(draw, form_code: str, donors: list[Patient]) -> dict:
    model = form_model(form_code)
    values = {}
    if form_code == "eligibility":
        return values  # the protocol's criteria, drawn in the test
    for name in editable_fields(model):
        if name == "serum_donor":
            continue
        field = model._meta.get_field(name)
        values[name] = draw(field_values(field, history=name in model.HISTORY_DATES))
    # The model's own conditions, so the first save is a valid one.
    if form_code == "consent" and values["consent_date"] is not None:
        values["consent_date"] = min(values["consent_date"], VISIT_DAY["SCR"])
    if form_code == "demographics" and values["sex"] != "F":
        values["childbearing_potential"] = None
    if form_code == "dlqi" and values["q7a"] != "no":
        values["q7b"] = ""
    if form_code == "medical_history":
        start, end = (
            values["interfering_treatment_start_date"],
            values["interfering_treatment_end_date"],
        )
        if start and end and end < start:
            values["interfering_treatment_end_date"] = start
    if form_code == "drug_accountability":
        dispensed, returned = values["units_dispensed"], values["units_returned"]
        if dispensed is not None and returned is not None and returned > dispensed:
            values["units_returned"] = dispensed
    if form_code == "echocardiography" and values["lvef_pct"] is not None:
        values["lvef_pct"] = max(values["lvef_pct"], 30)  # below: a warning to confirm
    if form_code in ("mdm_cytokines", "mdm_flow"):
        values["condition"] = draw(st.sampled_from(["untreated", "ruxolitinib"]))
        if form_code == "mdm_cytokines":
            if values["condition"] != "ruxolitinib":
                values["ruxolitinib_nm"] = None
            for name in ("ccl18", "pdgfbb", "il6", "cxcl10", "cxcl4"):
                if values[f"{name}_below_lod"]:
                    values[f"{name}_pg_ml"] = None
        values["serum_donor"] = None
    return values


# -- the page as a browser would post it ------------------------------------------------------


class FormFields(HTMLParser):
    """The data a browser posts for the page's first POST form, as rendered."""

    def __init__(self):
        super().__init__()
        self.data: list[tuple[str, str]] = []
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "").lower() == "post":
            self._in_form = True
        if not self._in_form:
            return
        name = attrs.get("name")
        if tag == "input" and name and "disabled" not in attrs:
            kind = attrs.get("type", "text")
            if kind in ("radio", "checkbox"):
                if "checked" in attrs:
                    self.data.append((name, attrs.get("value", "on")))
            elif kind not in ("submit", "button"):
                self.data.append((name, attrs.get("value") or ""))
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.data.append((self._select, attrs.get("value", "")))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data):
        if self._textarea:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            # Browsers drop the one newline that follows <textarea>.
            self.data.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None


def as_posted(html: str) -> dict[str, list[str]]:
    parser = FormFields()
    parser.feed(html)
    posted: dict[str, list[str]] = {}
    for name, value in parser.data:
        posted.setdefault(name, []).append(value)
    return posted


def written() -> tuple[int, ...]:
    """Rows and audit events of every form, visit and deviation (one query)."""
    tables = []
    for model in (*FORM_MODELS.values(), Visit, Deviation):
        event = apps.get_model(model._meta.app_label, f"{model.__name__}Event")
        tables += [model._meta.db_table, event._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in tables))
        return cursor.fetchone()


def stored(instance) -> dict:
    model = type(instance)
    fresh = model.objects.get(pk=instance.pk)
    return {f.attname: getattr(fresh, f.attname) for f in model._meta.concrete_fields}


# -- the test ---------------------------------------------------------------------------------


def open_visit(world, form_code: str) -> Visit:
    """A consented patient whose visit takes the form, dated and open for entry."""
    study_key, group, code = WHERE[form_code]
    study = getattr(world, study_key)
    site, by = (world.bxp, world.alice) if study_key == "rct" else (world.ren, world.rene)
    patient = patient_create(study=study, site=site, by=by, screening_date=SCREENED, group=group)
    first = patient.visits.order_by("sequence").first()
    visit_record_date(visit=first, by=by, visit_date=VISIT_DAY[first.code])
    if form_code != "consent":
        consent = {
            "consent_date": SCREENED,
            "consent_version": "2.1",
            "signed_by_investigator": True,
        }
        crf_save(visit=first, form_code="consent", values=consent, by=by, expected_version=0)
    if form_code == "pregnancy_test":
        crf_save(
            visit=first,
            form_code="demographics",
            values={"birth_year": 1985, "sex": "F", "childbearing_potential": True},
            by=by,
            expected_version=0,
        )
    visit = patient.visits.filter(code=code).first()
    if visit is None:
        last = patient.visits.order_by("-sequence").first()
        visit = VisitFactory(patient=patient, code=code, sequence=last.sequence + 1)
    if visit.visit_date is None:
        Visit.objects.filter(pk=visit.pk).update(
            visit_date=VISIT_DAY[code], status=Visit.Status.IN_PROGRESS
        )
        visit.refresh_from_db()
    return visit


@pytest.mark.parametrize("form_code", sorted(FORM_MODELS))
def test_a_saved_form_posted_back_as_shown_changes_nothing(world, client, form_code):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "fr"
    donors = [
        PatientFactory(study=world.cohort, site=world.ren, created_by=world.rene, group="SSC")
    ]

    @ROUND_TRIP
    @given(data=st.data())
    def round_trip(data):
        visit = open_visit(world, form_code)
        patient = visit.patient
        by = world.alice if patient.study == world.rct else world.rene
        values = data.draw(answers(form_code, donors), label="values")
        if form_code == "eligibility":
            criteria = patient.protocol_version.protocol.eligibility_for(patient.group or None)
            picks = st.sampled_from([True, False, None])
            values = {"answers": {c.id: data.draw(picks, label=c.id) for c in criteria}}
        # A kit is the patient's own (allocated, then dispensed): never a drawn string.
        if form_code == "drug_dispensing":
            values["kit_number"] = allocated_kit(patient) or ""
        if form_code == "drug_accountability":
            values["kit_number"] = next(iter(dispensed_kits(patient)), "")
        saved = crf_save(visit=visit, form_code=form_code, values=values, by=by, expected_version=0)
        before, counts = stored(saved), written()

        client.force_login(by)
        args = [patient.study.code, patient.subject_code, visit.code, visit.repeat, form_code]
        repeatable = patient.protocol_version.protocol.form(form_code).repeatable
        url = (
            reverse("crfs:form_instance", args=[*args, saved.pk])
            if repeatable
            else reverse("crfs:form", args=args)
        )
        page = client.get(url)
        assert page.status_code == 200
        posted = as_posted(page.content.decode())
        posted.pop("csrfmiddlewaretoken", None)
        posted["reason"] = ["Relecture sans changement"]
        response = client.post(url, posted)

        assert response.status_code == 302, response.context["form"].errors.as_text()
        assert stored(saved) == before
        assert written() == counts

    round_trip()
