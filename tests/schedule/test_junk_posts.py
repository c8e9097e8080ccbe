"""Random junk POSTed to every data-entry form of both studies (hypothesis).

Each example posts one random payload to every form of the protocols, at a visit that takes
it: the form's own field names and random ones, with text, huge and negative numbers,
unicode, NUL characters, impossible dates, empty values and lists; sometimes on top of a
valid payload, so that one bad value among good ones is tried too. Whatever comes in, the
answer is a page (200), a redirect after a save (302), or a refusal (400/404/409), never a
server error; and unless the form was saved, nothing was written (neither a row nor an
audit event).
"""

from __future__ import annotations

import string
from datetime import date, timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecrf.crfs.forms import crf_form_class
from ecrf.crfs.models import form_model
from ecrf.patients.models import Allocation, Deviation, Patient, Visit
from ecrf.patients.randomisation import allocation_list_generate
from tests.clock import TODAY
from tests.factories import MembershipFactory, UserFactory
from tests.walks.helpers import (
    MEDICAL_HISTORY,
    add,
    checklist,
    clinical,
    cohort_inclusion,
    cytokines,
    date_visit,
    dlqi_data,
    enrol,
    fill,
    flow,
    form_url,
    haq_data,
    iso,
    labs_data,
    mrss_data,
    rct_m0,
    rct_pre_inclusion,
    saved,
    screen,
    sle_findings,
    ssc_findings,
    visit_url,
)

pytestmark = pytest.mark.django_db

DAY0 = TODAY - timedelta(days=60)
SCR_DAY = DAY0 - timedelta(days=10)
ANSWERED = (200, 302, 400, 404, 409)
JUNK_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,  # nothing written to .hypothesis/ in a shared tree
)

ODD = [
    "", " ", "NaN", "nan", "inf", "-inf", "-0", "1e308", "1e-400", "9" * 40, "-1", "0",
    "0.000001", "1,5", "٣", "１２", "2024-02-30", "0001-01-01", "9999-12-31", "1900-01-01",
    "31/12/2024", "2024-13-01", "true", "false", "on", "off", "unknown", "yes", "no", "None",
    "null", "\x00", "a\x00b", "<script>alert(1)</script>", "' OR 1=1 --", "🙂" * 50, "Ω≈ç√",
    "x" * 5000, "untreated", "hd_serum_untreated", "ruxolitinib", "F", "M", "NR", "very_much",
]  # fmt: skip
SCALAR = st.one_of(
    st.sampled_from(ODD),
    st.text(max_size=30),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat),
    st.dates(min_value=TODAY - timedelta(days=400), max_value=TODAY + timedelta(days=30)).map(
        date.isoformat
    ),
)
VALUE = st.one_of(SCALAR, st.lists(SCALAR, max_size=3))
RANDOM_KEY = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=14)


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def field_names(patient: Patient, form_code: str) -> list[str]:
    if form_code == "eligibility":
        criteria = patient.protocol_version.protocol.eligibility_for(patient.group or None)
        names = [f"criterion_{c.id}" for c in criteria]
    else:
        names = list(crf_form_class(form_model(form_code)).base_fields)
    # Plus the service's own fields and names a tampered POST might try.
    tampered = ["patient", "visit", "status", "entered_by", "total", "confirmed_warnings"]
    return [*names, "version", "reason", "confirm_mrss_drop", "confirm_lvef_low", *tampered]


def written(*models) -> tuple[int, ...]:
    """Rows and audit events of these models, of visits and of deviations (one query)."""
    tables = []
    for model in (*models, Visit, Deviation):
        event = apps.get_model(model._meta.app_label, f"{model.__name__}Event")
        tables += [model._meta.db_table, event._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in tables))
        return cursor.fetchone()


def post_junk(client, data, targets) -> None:
    """One random payload to each target; checks the answer and that a refusal wrote nothing."""
    for patient, code, repeat, form_code, instance_id, valid in targets:
        model = form_model(form_code)
        visit = Visit.objects.get(patient=patient, code=code, repeat=repeat)
        if instance_id:
            instance = model.objects.get(pk=instance_id)
        elif patient.protocol_version.protocol.form(form_code).repeatable:
            instance = None  # a new culture condition
        else:
            instance = model.objects.filter(visit=visit).first()
        version = instance.version if instance else 0
        payload = (
            {"version": str(version), "reason": "corrected value"}
            if data.draw(st.booleans())
            else {}
        )
        if data.draw(st.booleans(), label="on top of a valid payload"):
            payload.update(valid)
        keys = st.one_of(st.sampled_from(field_names(patient, form_code)), RANDOM_KEY)
        payload.update(data.draw(st.dictionaries(keys, VALUE, max_size=8), label=form_code))

        before = written(model)
        url = form_url(patient, code, form_code, repeat, instance=instance if instance_id else None)
        response = client.post(url, payload)
        assert response.status_code in ANSWERED, (form_code, payload)
        if response.status_code != 302:
            assert written(model) == before, (form_code, payload)


def post_visit_junk(client, data, patient: Patient) -> None:
    """Dating a visit or declaring it missed, with junk: never a 500, nothing half-written."""
    names = [
        "visit_date",
        "deviation_category",
        "deviation_reason",
        "change_reason",
        "version",
        "reason",
    ]
    keys = st.one_of(st.sampled_from(names), RANDOM_KEY)
    for code in ("M1", "M3"):
        payload = data.draw(st.dictionaries(keys, VALUE, max_size=6), label=code)
        before = written()
        response = client.post(visit_url(patient, code), payload)
        assert response.status_code in ANSWERED, (code, payload)
        if response.status_code != 302:
            assert written() == before, (code, payload)


def post_patient_junk(client, data, patient: Patient) -> None:
    """Enrolment and end of study with junk dates: refused with a message, never a 500."""
    urls = {
        "enrol": (
            ["day0_date"],
            reverse("patients:enrol", args=[patient.study.code, patient.subject_code]),
        ),
        "end": (
            ["status", "end_date", "reason"],
            reverse("patients:end", args=[patient.study.code, patient.subject_code]),
        ),
    }
    for name, (fields, url) in urls.items():
        keys = st.one_of(st.sampled_from(fields), RANDOM_KEY)
        payload = data.draw(st.dictionaries(keys, VALUE, max_size=4), label=name)
        response = client.post(url, payload)
        assert response.status_code in ANSWERED, (name, payload)


def rct_world(client, world) -> list[tuple]:
    """A screening woman of childbearing potential (SCR), and an enrolled patient with M0
    filled and M1 dated: every form code of the trial once, at a visit that takes it
    (changes to a saved form at M0, new forms at SCR and M1)."""
    keeper = UserFactory(username="keeper")
    MembershipFactory(user=keeper, study=world.rct, role="data_manager", unblinded=True)
    allocation_list_generate(study=world.rct, site=world.bxp, size=4, seed=3, by=keeper)
    client.force_login(world.alice)

    screening = screen(client, world.rct, site="BXP", screening_date=SCR_DAY)
    saved(date_visit(client, screening, "SCR", SCR_DAY))
    consent = {
        "consent_date": iso(SCR_DAY),
        "consent_version": "1",
        "signed_by_investigator": "true",
    }
    saved(fill(client, screening, "SCR", "consent", consent))
    demographics = {"birth_year": "1980", "sex": "F", "childbearing_potential": "true"}
    saved(fill(client, screening, "SCR", "demographics", demographics))

    # The pregnancy test on a woman whose demographics the junk does not change.
    pregnant = screen(client, world.rct, site="BXP", screening_date=SCR_DAY)
    saved(date_visit(client, pregnant, "SCR", SCR_DAY))
    saved(fill(client, pregnant, "SCR", "consent", consent))
    saved(fill(client, pregnant, "SCR", "demographics", demographics))

    enrolled = screen(client, world.rct, site="BXP", screening_date=SCR_DAY)
    rct_pre_inclusion(client, enrolled, SCR_DAY)
    enrol(client, enrolled, DAY0)
    kit = Allocation.objects.get(patient=enrolled).kit_number
    rct_m0(client, enrolled, DAY0, kit)
    m1_day = DAY0 + timedelta(days=30)
    saved(date_visit(client, enrolled, "M1", m1_day))

    scr = {
        "demographics": demographics,
        "consent": consent,
        "medical_history": MEDICAL_HISTORY,
        "echocardiography": {"exam_date": iso(SCR_DAY), "lvef_pct": "55"},
        "safety_labs": labs_data(SCR_DAY),
        "eligibility": checklist(screening),
    }
    pregnancy = {"test_date": iso(SCR_DAY), "test_type": "serum", "result": "negative"}
    m0 = {
        "skin_biopsy": {"biopsy_date": iso(DAY0), "body_site": "forearm"},
        "drug_dispensing": {
            "kit_number": kit,
            "dispensing_date": iso(DAY0),
            "units_dispensed": "720",
            "expected_units_per_day": "4",
        },
    }
    m1 = {
        "mrss": mrss_data(m1_day, 2),
        "dlqi": dlqi_data(),
        "haq": haq_data(),
        "drug_accountability": {
            "kit_number": kit,
            "accountability_date": iso(m1_day),
            "units_dispensed": "720",
            "units_returned": "100",
        },
    }
    return (
        [(screening, "SCR", 1, code, None, valid) for code, valid in scr.items()]
        + [(pregnant, "SCR", 1, "pregnancy_test", None, pregnancy)]
        + [(enrolled, "M0", 1, code, None, valid) for code, valid in m0.items()]
        + [(enrolled, "M1", 1, code, None, valid) for code, valid in m1.items()]
    )


def cohort_world(client, world) -> list[tuple]:
    """An SSc and an SLE participant at V0, and an enrolled healthy donor with LAB dated and
    one culture of each form already saved: every form code of Sclero-JAK that the trial
    does not have (demographics, consent and laboratory tests are the same forms), and its
    own eligibility checklist."""
    client.force_login(world.rene)
    ssc = screen(client, world.cohort, site="REN", screening_date=DAY0, group="SSC")
    saved(date_visit(client, ssc, "V0", DAY0))
    consent = {"consent_date": iso(DAY0), "consent_version": "2", "signed_by_investigator": "true"}
    saved(fill(client, ssc, "V0", "consent", consent))
    sle = screen(client, world.cohort, site="REN", screening_date=DAY0, group="SLE")
    saved(date_visit(client, sle, "V0", DAY0))
    saved(fill(client, sle, "V0", "consent", consent))

    donor = cohort_inclusion(client, world.cohort, "HD", DAY0)
    enrol(client, donor, DAY0)
    saved(date_visit(client, donor, "LAB", DAY0 + timedelta(days=5)))
    serum = {"serum_donor": str(ssc.pk)}
    saved(add(client, donor, "LAB", "mdm_cytokines", cytokines("hd_serum_untreated", **serum)))
    saved(add(client, donor, "LAB", "mdm_flow", flow("hd_serum_untreated", **serum)))
    cytokine_row = form_model("mdm_cytokines").objects.get(patient=donor)
    flow_row = form_model("mdm_flow").objects.get(patient=donor)

    v0 = {
        "eligibility": checklist(ssc),
        "clinical_characteristics": clinical(),
        "ssc_classification": ssc_findings(),
        "blood_sample": {"sample_date": iso(DAY0), "serum_aliquots": "4", "pbmc_isolated": "true"},
    }
    rux = {"serum_donor": str(ssc.pk)}
    return [(ssc, "V0", 1, code, None, valid) for code, valid in v0.items()] + [
        (sle, "V0", 1, "sle_classification", None, sle_findings()),
        (donor, "LAB", 1, "mdm_cytokines", None, cytokines("hd_serum_ruxolitinib", **rux)),
        (donor, "LAB", 1, "mdm_flow", None, flow("hd_serum_ruxolitinib", **rux)),
        (donor, "LAB", 1, "mdm_cytokines", cytokine_row.pk, {**cytokines("untreated")}),
        (donor, "LAB", 1, "mdm_flow", flow_row.pk, {**flow("hd_serum_untreated", **serum)}),
    ]


@JUNK_SETTINGS
@given(data=st.data())
def test_junk_to_every_trial_form_never_errors_nor_writes_half(client, world, data):
    if not hasattr(world, "junk_targets"):
        world.junk_targets = rct_world(client, world)
    post_junk(client, data, world.junk_targets)
    post_visit_junk(client, data, world.junk_targets[-1][0])
    post_patient_junk(client, data, world.junk_targets[0][0])


@JUNK_SETTINGS
@given(data=st.data())
def test_junk_to_every_cohort_form_never_errors_nor_writes_half(client, world, data):
    if not hasattr(world, "junk_targets"):
        world.junk_targets = cohort_world(client, world)
    post_junk(client, data, world.junk_targets)
    post_patient_junk(client, data, world.junk_targets[0][0])
