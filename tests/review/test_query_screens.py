"""The query screens: the lists per study and per site with their filters and constant
cost, a query's page and its forms per role, raising from the SDV page, the marks on the
CRF page, the counts on the patient list, the casebook and the SDV matrix."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from ecrf.crfs.models import Consent
from ecrf.patients.models import FormIndexEntry
from ecrf.review.models import Query, QueryMessage
from ecrf.review.queries import query_answer, query_close, query_create, query_raise
from tests.review.conftest import entry, patient_with_forms
from tests.review.test_sdv_screens import cell, matrix_url

pytestmark = pytest.mark.django_db


def list_url(world, site: str | None = None, **query) -> str:
    if site:
        url = reverse("review:site_queries", args=[world.rct.code, site])
    else:
        url = reverse("review:queries", args=[world.rct.code])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def query_url(world, query) -> str:
    return reverse("review:query", args=[world.rct.code, query.pk])


def said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _raise(world, patient, field="consent_version", text="Version 2.1 or 2.2?"):
    return query_raise(by=world.monica, entry=entry(patient, "consent"), field=field, text=text)


def _listed(response) -> list[int]:
    return [row["query"].pk for row in response.context["rows"]]


def _with_queries(world, site="bxp", age_days=0):
    """A patient of rows with two queries: Monica's on the consent, the system's on M0."""
    patient = patient_with_forms(world, site)
    consent = FormIndexEntry.objects.get(patient=patient, form_code="consent")
    when = timezone.now() - timedelta(days=age_days)
    query_create(
        patient=patient,
        entry=consent,
        visit=None,
        field="consent_date",
        text="The date on the signed copy?",
        by=world.monica,
        now=when,
    )
    query_create(
        patient=patient,
        entry=None,
        visit=patient.visits.get(code="M0"),
        field="",
        text="Visit M0 is past its window.",
        by=None,
        rule="visit_overdue",
        now=when,
    )
    return patient


# -- the lists ---------------------------------------------------------------------------------


# Session, user, the account's memberships (the second factor), study, the sites offered,
# the study's protocol versions, who raised the queries (the filter's choices), the queries
# counted and their page (patient, site, form, visit and raiser joined, the question in a
# subquery), the ageing in one aggregate: 10, whatever the number of patients and queries.
LIST_QUERIES = 10


@pytest.mark.parametrize("patients", [1, 50])
def test_the_study_list_costs_the_same_for_one_patient_and_fifty(
    world, en_client, django_assert_num_queries, patients
):
    for _ in range(patients):
        _with_queries(world)
    en_client.force_login(world.diane)
    url = list_url(world)
    en_client.get(url)  # the session's first request updates it
    with django_assert_num_queries(LIST_QUERIES):
        response = en_client.get(url)
    assert len(response.context["rows"]) == min(2 * patients, 25)
    assert response.context["page"].paginator.count == 2 * patients
    assert response.context["ageing"][0][2] == 2 * patients


@pytest.mark.parametrize("patients", [1, 50])
def test_the_site_list_costs_the_same_for_one_patient_and_fifty(
    world, en_client, django_assert_num_queries, patients
):
    for _ in range(patients):
        _with_queries(world)
    _with_queries(world, site="str_")
    en_client.force_login(world.diane)
    url = list_url(world, site="BXP", status="open")
    en_client.get(url)
    with django_assert_num_queries(LIST_QUERIES):
        response = en_client.get(url)
    assert response.context["page"].paginator.count == 2 * patients
    assert {row["query"].patient.site.code for row in response.context["rows"]} == {"BXP"}


def test_the_list_filters_by_status_age_form_visit_raiser_and_patient(world, en_client):
    young = _with_queries(world)
    old = _with_queries(world, age_days=40)
    en_client.force_login(world.monica)
    every = set(Query.objects.values_list("pk", flat=True))
    manual = set(Query.objects.filter(origin="manual").values_list("pk", flat=True))
    assert set(_listed(en_client.get(list_url(world)))) == every

    def listed(**query):
        return set(_listed(en_client.get(list_url(world, **query))))

    assert listed(raised_by="system") == every - manual
    assert listed(raised_by=world.monica.pk) == manual
    assert listed(form="consent") == manual
    assert listed(visit="M0") == every - manual
    assert listed(age="over-30") == set(
        Query.objects.filter(patient=old).values_list("pk", flat=True)
    )
    assert listed(age="0-7") == set(
        Query.objects.filter(patient=young).values_list("pk", flat=True)
    )
    assert listed(q=young.subject_code) == set(
        Query.objects.filter(patient=young).values_list("pk", flat=True)
    )
    first = Query.objects.filter(origin="manual").order_by("pk").first()
    query_close(by=world.monica, query=first, text="Raised on the wrong patient.")
    assert listed(status="closed") == {first.pk}
    assert listed(status="open") == every - {first.pk}
    response = en_client.get(list_url(world))
    assert b"Days open" in response.content and b"over 30 days: 2" in response.content


def test_each_site_sees_only_its_own_queries(world, en_client):
    bxp = _with_queries(world)
    str_ = _with_queries(world, site="str_")
    en_client.force_login(world.charlie)
    response = en_client.get(list_url(world))
    assert {row["query"].patient for row in response.context["rows"]} == {str_}
    assert en_client.get(list_url(world, site="BXP")).status_code == 404
    bxp_query = Query.objects.filter(patient=bxp).first()
    assert en_client.get(query_url(world, bxp_query)).status_code == 404
    response = en_client.post(
        query_url(world, bxp_query), {"action": "answer", "text": "Answered from Strasbourg."}
    )
    assert response.status_code == 404
    assert QueryMessage.objects.filter(query=bxp_query).count() == 1


# -- a query's page ----------------------------------------------------------------------------


def test_the_site_sees_answer_and_correct_the_monitor_close(world, en_client, patient):
    query = _raise(world, patient)
    en_client.force_login(world.alice)
    response = en_client.get(query_url(world, query))
    assert response.context["can_answer"] and response.context["can_correct"]
    assert not response.context["can_close"]
    assert b'data-testid="answer-form"' in response.content
    assert b'data-testid="close-form"' not in response.content
    assert response.context["value"] == "2.1"
    en_client.force_login(world.monica)
    response = en_client.get(query_url(world, query))
    assert not response.context["can_answer"] and response.context["can_close"]
    assert b'data-testid="answer-form"' not in response.content


def test_answering_correcting_and_closing_through_the_page(world, en_client, patient):
    query = _raise(world, patient)
    en_client.force_login(world.alice)
    response = en_client.post(
        query_url(world, query),
        {"action": "correct", "version": "1", "value": "2.2", "text": ""},
    )
    assert said(response) == [f"Query #{query.pk}: the value is corrected."]
    assert Consent.objects.get(patient=patient).consent_version == "2.2"
    en_client.force_login(world.monica)
    response = en_client.post(
        query_url(world, query), {"action": "close", "text": "Corrected as on the source."}
    )
    assert said(response)[-1] == f"Query #{query.pk}: closed."
    page = en_client.get(query_url(world, query))
    assert [m.kind for m, _who in page.context["thread"]] == ["raise", "correction", "close"]


def test_an_answer_to_a_closed_query_says_why_and_saves_nothing(world, en_client, patient):
    query = _raise(world, patient)
    query_close(by=world.monica, query=query, text="Raised on the wrong patient.")
    en_client.force_login(world.alice)
    response = en_client.post(
        query_url(world, query), {"action": "answer", "text": "Version 2.1, as on the source."}
    )
    assert response.status_code == 302
    assert said(response) == [
        f"Query #{query.pk} is closed: nothing more can be added. Raise a new query."
    ]
    assert QueryMessage.objects.filter(query=query).count() == 2


def test_a_correction_of_frozen_data_says_so_and_saves_nothing(world, en_client, patient):
    from ecrf.review.locks import data_freeze

    query = _raise(world, patient)
    data_freeze(by=world.diane, patient=patient, reason="Interim analysis cut-off")
    en_client.force_login(world.alice)
    response = en_client.post(
        query_url(world, query), {"action": "correct", "version": "1", "value": "2.2"}
    )
    assert "frozen" in said(response)[0]
    assert Consent.objects.get(patient=patient).version == 1
    assert Query.objects.get(pk=query.pk).status == "open"


def test_the_reviewer_reopens_an_answered_query(world, en_client, patient):
    query = _raise(world, patient)
    query_answer(by=world.bob, query=query, text="Version 2.1, as on the source.")
    en_client.force_login(world.diane)
    response = en_client.get(query_url(world, query))
    assert response.context["can_reopen"]
    en_client.post(query_url(world, query), {"action": "reopen", "text": "The binder says 2.2."})
    assert Query.objects.get(pk=query.pk).status == "reopened"


# -- raising from the SDV page -----------------------------------------------------------------


def test_the_monitor_raises_a_query_on_a_field_from_the_sdv_page(world, en_client, patient):
    consent = entry(patient, "consent")
    en_client.force_login(world.monica)
    page = en_client.get(reverse("review:form", args=[world.rct.code, consent.pk]))
    assert b'data-testid="raise-form"' in page.content
    url = reverse("review:query_raise", args=[world.rct.code, consent.pk])
    response = en_client.post(url, {"field": "consent_date", "text": "Which date on the copy?"})
    query = Query.objects.get()
    assert said(response) == [f"Query #{query.pk} raised on Informed consent."]
    assert (query.field, query.raised_by) == ("consent_date", world.monica)
    page = en_client.get(reverse("review:form", args=[world.rct.code, consent.pk]))
    assert b"Which date on the copy?" in page.content
    response = en_client.post(url, {"field": "", "text": "short"})
    assert said(response) == ["Query: give at least 10 characters."]
    assert Query.objects.count() == 1


def test_raising_on_another_sites_form_is_a_404(world, en_client, patient):
    en_client.force_login(world.charlie)
    url = reverse("review:query_raise", args=[world.rct.code, entry(patient, "consent").pk])
    assert en_client.post(url, {"field": "", "text": "Not my site's form."}).status_code == 404
    en_client.force_login(world.alice)  # the site itself raises nothing
    response = en_client.post(url, {"field": "", "text": "Raising my own query."})
    assert "Your role does not allow you to raise queries" in said(response)[0]
    assert not Query.objects.exists()


# -- the marks and counts on the other pages ---------------------------------------------------


def test_the_crf_page_marks_the_field_and_shows_its_thread(world, en_client, patient):
    query = _raise(world, patient)
    closed = _raise(world, patient, field="consent_date", text="Settled already, closed.")
    query_close(by=world.monica, query=closed, text="Raised on the wrong field.")
    en_client.force_login(world.alice)
    url = reverse("crfs:form", args=[world.rct.code, patient.subject_code, "SCR", 1, "consent"])
    page = en_client.get(url).content.decode()
    assert 'data-query-fields="consent_version "' in page
    assert f'data-testid="form-query-{query.pk}"' in page
    assert "Version 2.1 or 2.2?" in page
    assert f'data-testid="form-query-{closed.pk}"' not in page
    assert "js/queries.js" in page
    # The site corrects on the form: the button carries the query into the reason.
    assert f'data-testid="correct-on-form-{query.pk}"' in page
    assert f'data-reason="Query #{query.pk}: "' in page
    # A monitor reads the thread, and corrects nothing.
    en_client.force_login(world.monica)
    assert "correct-on-form" not in en_client.get(url).content.decode()


def test_the_patient_list_and_the_casebook_count_the_queries(world, en_client, patient):
    _raise(world, patient)
    _raise(world, patient, field="consent_date", text="The date on the copy?")
    en_client.force_login(world.bob)
    listing = en_client.get(reverse("patients:list", args=[world.rct.code])).content.decode()
    assert f'?q={patient.subject_code}">2</a>' in listing
    casebook = en_client.get(
        reverse("patients:detail", args=[world.rct.code, patient.subject_code])
    ).content.decode()
    assert "2 queries not closed" in casebook and "SCR 2" in casebook
    visit = en_client.get(
        reverse("crfs:visit", args=[world.rct.code, patient.subject_code, "SCR", 1])
    ).content.decode()
    assert "2 queries not closed" in visit and "Informed consent 2" in visit


def test_the_sdv_matrix_counts_the_queries_per_visit_and_in_the_log(world, en_client):
    patient = _with_queries(world)
    event = FormIndexEntry.objects.get(patient=patient, form_code="adverse_event")
    query_raise(by=world.monica, entry=event, text="Onset date on the source?")
    en_client.force_login(world.monica)
    response = en_client.get(matrix_url(world, site="BXP"))
    assert cell(response, patient.subject_code, "SCR").open_queries == 1
    assert cell(response, patient.subject_code, "M0").open_queries == 1
    row = next(r for r in response.context["rows"] if r.patient == patient)
    assert row.log.open_queries == 1
    assert b'data-testid="log-queries"' in response.content


def test_bad_posts_get_a_message_never_a_500(world, en_client, patient):
    query = _raise(world, patient, field="consent_date", text="The date on the signed copy?")
    en_client.force_login(world.alice)
    url = query_url(world, query)
    for data, expected in (
        ({"action": "correct", "version": "1", "value": "not a date"}, "The corrected value"),
        ({"action": "correct", "version": "0", "value": "2026-09-14"}, "was changed since"),
        ({"action": "correct", "value": "2026-09-14"}, "was changed since"),
        ({"action": "shred"}, "does not say what to do"),
        ({"action": "answer", "text": ""}, "Answer: write the message."),
    ):
        response = en_client.post(url, data)
        assert response.status_code == 302
        assert expected in said(response)[-1]
    assert Consent.objects.get(patient=patient).version == 1
    assert QueryMessage.objects.filter(query=query).count() == 1
    assert en_client.get(reverse("review:query", args=[world.rct.code, 999999])).status_code == 404
