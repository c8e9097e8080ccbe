"""The API against its own OpenAPI schema (schemathesis), for each persona with a token.

Every GET and the form's PUT, with the requests schemathesis generates from the schema
(some on the personas' real study, patients, visits and forms, some on whatever path it
makes up): no 5xx, every status code, content type and body as the schema documents, and
never a subject code of a site the persona may not see.

In-process through the WSGI application: the calls run in the test's thread, so on its
database connection and inside its transaction, and on its clock.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory
from django.urls import Resolver404, resolve
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ecrf.api.auth import TokenRateThrottle
from ecrf.api.tokens import token_create
from ecrf.core.middleware import has_junk
from ecrf.crfs.models import form_model
from ecrf.crfs.services import crf_save
from ecrf.patients.models import Visit
from ecrf.wsgi import application
from tests.factories import VisitFactory
from tests.two_factor import totp_device

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 12  # per operation, on made-up paths
PER_PATH = 2  # per operation and real path
RCT, COHORT = "NCT00479934", "NCT04206644"

DLQI = {
    "q1": "a_little", "q2": "not_at_all", "q3": "not_at_all", "q4": "a_little",
    "q5": "not_at_all", "q6": "NR", "q7a": "no", "q7b": "a_little", "q8": "not_at_all",
    "q9": "NR", "q10": "not_at_all",
}  # fmt: skip


def _visits(patient, investigator):
    """Consent and the mRSS at screening, the DLQI at M0: forms to read, one to write."""
    today = timezone.localdate()
    scr = VisitFactory(
        patient=patient, code="SCR", sequence=0, visit_date=today - timedelta(days=20),
        status=Visit.Status.IN_PROGRESS,
    )  # fmt: skip
    VisitFactory(
        patient=patient, code="M0", sequence=1, visit_date=today,
        status=Visit.Status.IN_PROGRESS,
    )  # fmt: skip
    crf_save(
        visit=scr,
        form_code="consent",
        values={
            "consent_date": scr.visit_date,
            "consent_version": "1.0",
            "signed_by_investigator": True,
        },
        by=investigator,
        expected_version=0,
    )
    crf_save(
        visit=scr,
        form_code="mrss",
        values={"exam_date": scr.visit_date, "assessor": "Dr Test", "face": 1},
        by=investigator,
        expected_version=0,
    )


@pytest.fixture
def api(world, monkeypatch):
    """The schema as the application serves it, and the personas' data to fuzz it with."""
    for patient in world.bxp_patients:
        _visits(patient, world.alice)
    for patient in world.str_patients:
        _visits(patient, world.charlie)
    # A few hundred calls a minute per persona: the rate limit is tested on its own.
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"api": "100000/min"})
    # As Django's test client does: a request's end must not close the test's connection
    # (its transaction holds the personas).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


FORM = (
    "/api/v1/studies/{study_code}/patients/{subject_code}/visits/{visit_code}/{repeat}"
    "/forms/{form_code}/"
)
FORM_WRITE = f"PUT {FORM}"
FIRST_OPERATIONS = {
    "GET /api/v1/studies/",
    "GET /api/v1/studies/{study_code}/",
    "GET /api/v1/studies/{study_code}/sites/",
    "GET /api/v1/studies/{study_code}/protocol/",
    "GET /api/v1/studies/{study_code}/patients/",
    "GET /api/v1/studies/{study_code}/patients/{subject_code}/",
    "GET /api/v1/studies/{study_code}/forms/{form_code}/",
    f"GET {FORM}",
    FORM_WRITE,
}
PERSONAS = {
    # persona: (the patients it works on, the patients it must never see)
    "alice": (("bxp_patients",), ("str_patients", "ren_patients")),
    "charlie": (("str_patients",), ("bxp_patients", "ren_patients")),
    "monica": (("bxp_patients",), ("str_patients", "ren_patients")),
    "diane": (("bxp_patients", "str_patients", "ren_patients"), ()),
}
# Each visit's forms as _visits leaves them, and a body to write each with: the DLQI new
# (201, then 409 on the same version), the saved mRSS corrected (200, then 409).
FORMS = {
    ("SCR", "consent"): None,
    ("SCR", "mrss"): {"version": 1, "reason": "Typo in the source", "values": {"face": 2}},
    ("M0", "dlqi"): {"version": 0, "values": DLQI},
}


def _codes(world, attributes) -> set[str]:
    return {p.subject_code for a in attributes for p in getattr(world, a)}


def _path_choices(operation, world) -> list[tuple[dict, object]]:
    """Real values for the operation's path parameters (the others are made up), with a
    body for a form's write."""
    names = {p.name for p in operation.path_parameters}
    patients = world.bxp_patients + world.str_patients + world.ren_patients
    if "subject_code" in names:
        paths = [{"study_code": p.study.code, "subject_code": p.subject_code} for p in patients]
    elif "form_code" in names:
        paths = [{"study_code": RCT, "form_code": form} for form in ("mrss", "dlqi", "haq")]
    elif "study_code" in names:
        paths = [{"study_code": code} for code in (RCT, COHORT)]
    else:
        return []
    if "visit_code" not in names:
        return [(path, None) for path in paths]
    return [
        ({**path, "visit_code": visit, "repeat": 1, "form_code": form}, body)
        for path in paths
        for (visit, form), body in FORMS.items()
    ]


def _runs(operation, world, headers):
    """(strategy, examples): made-up paths first, then each real one."""
    runs = [(operation.as_strategy(headers=headers), EXAMPLES)]
    for path, body in _path_choices(operation, world):
        real = operation.as_strategy(headers=headers, path_parameters=path)
        runs.append((st.tuples(real, st.booleans()).map(_maybe_one_instance), PER_PATH))
        if operation.method.upper() == "PUT" and body is not None:
            fixed = operation.as_strategy(headers=headers, path_parameters=path, body=body)
            runs.append((fixed.map(_one_instance), 2))
            # The form's own fields with any JSON value, on the version saved: what gets
            # past the version check to the answers' own checks and the database.
            answers = st.dictionaries(
                st.sampled_from(form_model(path["form_code"]).answer_fields()),
                JSON_VALUES,
                min_size=1,
                max_size=3,
            )
            runs.append((st.tuples(real, answers).map(_on_saved_version), PER_PATH * 2))
    return runs


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.dates().map(str),
)


def _on_saved_version(case_and_answers):
    case, answers = case_and_answers
    _one_instance(case)
    p = case.path_parameters
    saved = (
        form_model(p["form_code"])
        .objects.filter(visit__patient__subject_code=p["subject_code"], visit__code=p["visit_code"])
        .values_list("version", flat=True)
        .first()
    )
    case.body = {"version": saved or 0, "reason": "Typo in the source", "values": answers}
    return case


def _one_instance(case):
    """Without the `instance` parameter, which only a repeatable form takes (any other
    form is a 404 with it): the made-up paths still send it."""
    if case.query:
        case.query.pop("instance", None)
    return case


def _maybe_one_instance(case_and_drop):
    case, drop = case_and_drop
    return _one_instance(case) if drop else case


def _outside_the_api(case) -> int | None:
    """The status of a request that never reaches the API's views, or None.

    A control character in the address or a query value is refused first, with the site's
    HTML 400 page (ecrf.core.middleware); an address no route takes (a "/" in a path
    parameter, a negative number where the route takes digits) gets Django's HTML 404
    page. Neither is in the schema, nor could be from the API's views.
    """
    query = urlencode(case.query or {}, doseq=True)
    request = RequestFactory().generic(case.method, case.formatted_path, QUERY_STRING=query)
    if has_junk(request):
        return 400
    try:
        resolve(request.path_info)
    except Resolver404:
        return 404
    return None


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_read_and_the_form_write_keep_to_the_schema(api, world, persona):
    user = getattr(world, persona)
    totp_device(user)
    _token, key = token_create(user=user, name="schemathesis", days=30)
    headers = {"Authorization": f"Bearer {key}"}
    own, others = (_codes(world, attributes) for attributes in PERSONAS[persona])
    seen: set[str] = set()
    statuses: dict[str, set[int]] = {}

    operations = [
        op.ok()
        for op in api.get_all_operations()
        if op.ok().method.upper() == "GET" or op.ok().label == FORM_WRITE
    ]
    assert {op.label for op in operations} >= FIRST_OPERATIONS
    for operation in operations:
        for strategy, examples in _runs(operation, world, headers):

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def call(case):
                if (status := _outside_the_api(case)) is not None:
                    response = case.call()
                    assert response.status_code == status
                else:
                    response = case.call_and_validate(checks=CHECKS)
                    statuses.setdefault(case.operation.label, set()).add(response.status_code)
                leaked = {code for code in others if code in response.text}
                assert not leaked, f"{persona} got {sorted(leaked)} from {case.formatted_path}"
                seen.update(code for code in own if code in response.text)

            call()

    print(persona, json.dumps({k: sorted(v) for k, v in statuses.items()}, indent=1))
    assert seen == own, "every patient of the persona's sites was read at least once"
    writes = statuses[FORM_WRITE]
    if persona in ("alice", "charlie"):
        # Entered, corrected, refused, and refused as stale: each answer as documented.
        assert {200, 201, 400, 409} <= writes
    else:
        assert 403 in writes and not writes & {200, 201}, "monitors and data managers enter nothing"
