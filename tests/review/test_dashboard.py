"""The review dashboards: a monitor's site, a data manager's study, the lists behind their
figures (overdue visits, protocol deviations), the SVG charts, who may see them, and
their pinned query counts."""

from __future__ import annotations

import re
from datetime import date, timedelta
from xml.etree import ElementTree

import pytest
from django.urls import reverse
from django.utils import timezone

from ecrf.patients.models import Deviation, FormIndexEntry, Patient, Visit
from ecrf.review.charts import bar_chart, enrolment_chart, progress_bars
from ecrf.review.dashboard import study_dashboard
from ecrf.review.queries import query_close, query_create
from ecrf.review.sdv import sdv_mark
from ecrf.safety.models import SaeReport
from tests.factories import AdverseEventFactory, PatientFactory, VisitFactory
from tests.review.conftest import patient_with_forms

pytestmark = pytest.mark.django_db


def site_url(world, site="BXP", **query) -> str:
    url = reverse("review:site_dashboard", args=[world.rct.code, site])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def study_url(world) -> str:
    return reverse("review:dashboard", args=[world.rct.code])


def included(patient: Patient, day0: date, status=Patient.Status.ENROLLED) -> Patient:
    Patient.objects.filter(pk=patient.pk).update(
        status=status, day0_date=day0, screening_date=day0 - timedelta(days=14)
    )
    patient.refresh_from_db()
    return patient


def planned(patient: Patient, code: str, sequence: int, *, closed_days_ago: int, **fields):
    latest = timezone.localdate() - timedelta(days=closed_days_ago)
    return VisitFactory(
        patient=patient,
        code=code,
        sequence=sequence,
        earliest_date=latest - timedelta(days=14),
        target_date=latest - timedelta(days=7),
        latest_date=latest,
        **fields,
    )


def sae(patient: Patient, *, due_in_hours: int, submitted: bool = False, by=None) -> SaeReport:
    now = timezone.now()
    event = AdverseEventFactory(
        patient=patient,
        serious=True,
        sae_hospitalisation=True,
        aware_at=now - timedelta(hours=30),
        serious_aware_at=now - timedelta(hours=30),
    )
    return SaeReport.objects.create(
        adverse_event=event,
        number=0,
        aware_at=event.serious_aware_at,
        due_at=now + timedelta(hours=due_in_hours),
        submitted_at=now - timedelta(hours=1) if submitted else None,
        submitted_by=by if submitted else None,
    )


def deviation(patient: Patient, *, by, closed: bool = False, visit=None) -> Deviation:
    return Deviation.objects.create(
        patient=patient,
        visit=visit,
        category=Deviation.Category.MISSED_VISIT if visit is None else "out_of_window",
        reason="The patient was abroad for the month.",
        recorded_by=by,
        closed_at=timezone.now() if closed else None,
        closed_by=by if closed else None,
        close_reason="Re-dated inside its window." if closed else "",
    )


@pytest.fixture
def built(world, sample):
    """Bordeaux: BXP-001 included in October, BXP-002 in December, BXP-003 in screening;
    Strasbourg: STR-001 included in November. Overdue visits, SAE reports, deviations and
    one patient with forms to verify (out of the SDV sample) at Bordeaux."""
    bxp1, bxp2, _bxp3 = world.bxp_patients
    str1, _str2 = world.str_patients
    included(bxp1, date(2026, 10, 5))
    included(bxp2, date(2026, 12, 1))
    included(str1, date(2026, 11, 10))
    # Overdue: BXP-001's M1 (closed 5 days ago) and M3 (40 days ago), STR-001's M1.
    planned(bxp1, "M1", 2, closed_days_ago=5)
    planned(bxp1, "M3", 3, closed_days_ago=40)
    planned(str1, "M1", 2, closed_days_ago=1)
    # Not overdue: the window closes today; dated; missed; a withdrawn patient's.
    planned(bxp2, "M1", 2, closed_days_ago=0)
    planned(bxp2, "M0", 1, closed_days_ago=3, visit_date=timezone.localdate() - timedelta(days=4))
    planned(
        bxp2, "M3", 3, closed_days_ago=3, status=Visit.Status.MISSED, missed_reason="In hospital"
    )
    withdrawn = included(
        PatientFactory(study=world.rct, site=world.bxp, created_by=world.alice),
        date(2026, 10, 20),
        status=Patient.Status.WITHDRAWN,
    )
    planned(withdrawn, "M1", 2, closed_days_ago=9)
    # SAE reports: BXP one late, one pending in time, one submitted; STR one late.
    sae(bxp1, due_in_hours=-6)
    sae(bxp1, due_in_hours=10)
    sae(bxp2, due_in_hours=-20, submitted=True, by=world.alice)
    sae(str1, due_in_hours=-1)
    # Deviations: two standing at BXP, one closed; one standing at STR.
    deviation(bxp1, by=world.alice)
    deviation(bxp2, by=world.alice)
    deviation(bxp1, by=world.alice, closed=True)
    deviation(str1, by=world.charlie)
    # SDV: consent, mRSS and a serious event required (out of the sample), consent verified.
    forms = patient_with_forms(world)
    sample({forms: False})
    sdv_mark(
        by=world.monica,
        entry=FormIndexEntry.objects.get(patient=forms, form_code="consent"),
    )
    return {"forms": forms, "withdrawn": withdrawn}


# -- the figures ----------------------------------------------------------------------------


def test_the_figures_of_each_site_and_their_sum(world, built):
    versions = {v.pk: v for v in world.rct.protocol_versions.all()}
    dashboard = study_dashboard(world.rct, [world.bxp, world.str_], versions=versions)
    bxp, strasbourg = dashboard.sites

    assert (bxp.site, strasbourg.site) == (world.bxp, world.str_)
    assert (bxp.overdue_visits, strasbourg.overdue_visits) == (2, 1)
    assert (bxp.sae_pending, bxp.sae_late) == (2, 1)
    assert (strasbourg.sae_pending, strasbourg.sae_late) == (1, 1)
    assert (bxp.deviations, strasbourg.deviations) == (2, 1)
    # BXP: the world's three, the withdrawn patient, the patient with forms (screening).
    assert (bxp.screened, bxp.enrolled) == (5, 3)
    assert (strasbourg.screened, strasbourg.enrolled) == (2, 1)
    assert bxp.enrolment_months == {
        date(2026, 10, 1): 2,  # BXP-001 and the withdrawn patient: they were included
        date(2026, 12, 1): 1,
    }
    # The forms patient's consent (verified), mRSS and serious event, and the three serious
    # events of Bordeaux's SAE reports; Strasbourg's serious event.
    assert (bxp.sdv.required, bxp.sdv.verified, bxp.sdv_backlog) == (6, 1, 5)
    assert bxp.sdv.percent == 16
    assert (strasbourg.sdv.required, strasbourg.sdv.verified) == (1, 0)
    assert strasbourg.sdv.percent == 0

    total = dashboard.total
    assert (total.overdue_visits, total.sae_pending, total.sae_late, total.deviations) == (
        3,
        3,
        2,
        3,
    )
    assert (total.enrolled, dashboard.target, dashboard.enrolment_percent) == (4, 28, 14)
    assert total.enrolment_months == {
        date(2026, 10, 1): 2,
        date(2026, 11, 1): 1,
        date(2026, 12, 1): 1,
    }
    # No query raised: every bucket at 0, not "not tracked".
    assert total.query_ageing == {"0-7": 0, "8-14": 0, "15-30": 0, "over-30": 0}
    assert total.open_queries == 0
    # The withdrawn patient's casebook, unsigned.
    assert total.awaiting_signature == 1


def test_the_monitors_site_dashboard_links_each_figure_to_its_list(world, built, en_client):
    en_client.force_login(world.monica)
    response = en_client.get(site_url(world))
    assert response.status_code == 200
    figures = response.context["figures"]
    assert (figures.sdv_backlog, figures.overdue_visits, figures.sae_pending) == (5, 2, 2)
    page = response.content.decode()
    code = world.rct.code

    def figure(name: str) -> str:
        return re.search(rf'<(?:a|div) [^>]*data-testid="figure-{name}"[^>]*>', page).group(0)

    assert f'href="{reverse("review:matrix", args=[code])}?site=BXP"' in figure("sdv")
    assert f'href="{reverse("review:overdue_visits", args=[code])}?site=BXP"' in figure("overdue")
    sae_list = reverse("safety:sae_list", args=[code])
    assert f'href="{sae_list}?site=BXP&amp;clock=pending"' in figure("sae")
    assert f'href="{sae_list}?site=BXP&amp;clock=late"' in figure("sae_late")
    deviations = reverse("review:deviations", args=[code])
    assert f'href="{deviations}?site=BXP&amp;state=open"' in figure("deviations")
    queries = reverse("review:queries", args=[code])
    assert f'href="{queries}?site=BXP"' in figure("queries")
    signatures = reverse("review:signatures", args=[code])
    assert f'href="{signatures}?site=BXP"' in figure("signatures")
    assert "not tracked yet" not in page
    assert re.search(r'data-testid="figure-sae_late".*?>1</div>', page, re.S)


def test_the_sae_list_shows_the_reports_a_figure_counts(world, built, en_client):
    en_client.force_login(world.diane)
    url = reverse("safety:sae_list", args=[world.rct.code])

    def shown(query: str) -> list[tuple[str, bool]]:
        rows = en_client.get(f"{url}?{query}").context["rows"]
        return sorted((r.event.patient.subject_code, r.report.submitted_at is None) for r in rows)

    assert shown("site=BXP&clock=pending") == [("BXP-001", True), ("BXP-001", True)]
    assert shown("site=BXP&clock=late") == [("BXP-001", True)]
    assert shown("clock=late") == [("BXP-001", True), ("STR-001", True)]
    assert len(shown("site=BXP")) == 3  # the submitted report too


def test_the_dashboards_speak_french_by_default(world, built, client):
    client.force_login(world.diane)
    for url in (site_url(world), study_url(world)):
        response = client.get(url)
        assert response.status_code == 200
        assert '<html lang="fr">' in response.content.decode()


def test_the_study_dashboard_puts_the_sites_side_by_side(world, built, en_client):
    en_client.force_login(world.diane)
    response = en_client.get(study_url(world))
    assert response.status_code == 200
    page = response.content.decode()
    codes = [row[0].site.code for row in response.context["rows"]]
    assert codes == sorted(codes) and {"BXP", "STR"} <= set(codes)  # the trial's 12 sites
    assert "4 patients included of the target of 28 (14 %)." in page
    strasbourg = re.search(r'data-testid="site-row-STR".*?</tr>', page, re.S).group(0)
    overdue = reverse("review:overdue_visits", args=[world.rct.code])
    assert f'<a href="{overdue}?site=STR">1</a>' in strasbourg
    total = re.search(r'data-testid="site-row-total".*?</tr>', page, re.S).group(0)
    assert f'<a href="{overdue}">3</a>' in total


def raise_aged(world, patient, *, days: int, field: str = ""):
    """A monitor's query on the patient's consent (or first visit, with no consent entered),
    raised `days` (and an hour) ago."""
    entry = FormIndexEntry.objects.filter(patient=patient, form_code="consent").first()
    return query_create(
        patient=patient,
        entry=entry,
        visit=patient.visits.order_by("sequence").first() if entry is None else None,
        field=field,
        text="Is the consent date the one on the signed form?",
        by=world.monica,
        now=timezone.now() - timedelta(days=days, hours=1),
    )


def test_queries_not_closed_count_by_age_and_lead_to_their_list(world, built, en_client):
    bxp1, bxp2, _bxp3 = world.bxp_patients
    str1, _str2 = world.str_patients
    for patient, days in [(bxp1, 0), (bxp1, 3), (bxp2, 20), (bxp2, 41), (bxp1, 90), (str1, 9)]:
        raise_aged(world, patient, days=days)
    closed = raise_aged(world, bxp2, days=5)
    query_close(by=world.monica, query=closed, text="Raised on the wrong patient.")
    en_client.force_login(world.diane)

    response = en_client.get(site_url(world))

    figures = response.context["figures"]
    assert figures.query_ageing == {"0-7": 2, "8-14": 0, "15-30": 1, "over-30": 2}
    assert figures.open_queries == 5  # the closed one is settled
    svg = str(response.context["charts"]["ageing"])
    assert [int(v) for v in re.findall(r'data-value="([0-9]+)"', svg)] == [2, 0, 1, 2]
    assert "chart-is-empty" not in svg
    queries = reverse("review:queries", args=[world.rct.code])
    page = response.content.decode()
    assert f'href="{queries}?site=BXP"' in page
    assert f'href="{queries}?site=BXP&amp;age=over-30"' in page
    total = en_client.get(study_url(world)).context["total"]
    assert total.query_ageing == {"0-7": 2, "8-14": 1, "15-30": 1, "over-30": 2}
    # The list behind a bucket shows those queries, and only those.
    listed = en_client.get(f"{queries}?site=BXP&age=over-30")
    assert sorted(q.patient.subject_code for q in listed.context["page"]) == [
        bxp1.subject_code,
        bxp2.subject_code,
    ]


def test_casebooks_awaiting_signature_count_by_site_and_lead_to_their_list(world, built, en_client):
    bxp1, bxp2, _bxp3 = world.bxp_patients
    Patient.objects.filter(pk__in=[bxp1.pk, bxp2.pk]).update(status=Patient.Status.COMPLETED)
    en_client.force_login(world.diane)

    response = en_client.get(site_url(world))

    # The two ended at Bordeaux, and the withdrawn one: none signed.
    assert response.context["figures"].awaiting_signature == 3
    signatures = reverse("review:signatures", args=[world.rct.code])
    assert f'href="{signatures}?site=BXP"' in response.content.decode()
    total = en_client.get(study_url(world)).context["total"]
    assert total.awaiting_signature == 3
    listed = en_client.get(f"{signatures}?site=BXP").context["casebooks"]
    assert listed.paginator.count == 3


# -- who sees what --------------------------------------------------------------------------


def test_a_monitor_has_no_other_sites_dashboard_and_goes_to_their_own(world, en_client):
    en_client.force_login(world.monica)
    assert en_client.get(site_url(world, "STR")).status_code == 404
    assert en_client.get(site_url(world, "NOPE")).status_code == 404
    # The study's dashboard needs every site: a monitor of Bordeaux is sent to Bordeaux's.
    response = en_client.get(study_url(world))
    assert response.status_code == 302 and response.url == site_url(world)


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_site_staff_have_no_dashboard(world, en_client, persona):
    """A review screen: like the SDV matrix, for monitors and data managers only."""
    en_client.force_login(getattr(world, persona))
    assert en_client.get(site_url(world)).status_code == 403
    assert en_client.get(study_url(world)).status_code == 403


def test_outsiders_find_no_dashboard(world, en_client):
    en_client.force_login(world.charlie)  # Strasbourg's investigator: Bordeaux is not his
    assert en_client.get(site_url(world)).status_code == 404
    en_client.force_login(world.rene)  # the other study's
    assert en_client.get(site_url(world)).status_code == 404
    assert en_client.get(study_url(world)).status_code == 404


def test_a_data_manager_opens_any_sites_dashboard(world, en_client):
    en_client.force_login(world.diane)
    response = en_client.get(site_url(world, "STR"))
    assert response.status_code == 200 and response.context["site"] == world.str_


def test_the_patient_list_links_reviewers_to_the_dashboard(world, en_client):
    en_client.force_login(world.monica)
    page = en_client.get(reverse("patients:list", args=[world.rct.code])).content.decode()
    assert f'href="{study_url(world)}" data-testid="review-dashboard"' in page
    en_client.force_login(world.alice)
    page = en_client.get(reverse("patients:list", args=[world.rct.code])).content.decode()
    assert 'data-testid="review-dashboard"' not in page


# -- the lists behind the figures -----------------------------------------------------------


def test_the_overdue_list_shows_the_longest_overdue_first(world, built, en_client):
    en_client.force_login(world.diane)
    url = reverse("review:overdue_visits", args=[world.rct.code])
    rows = en_client.get(url).context["rows"]
    assert [(v.patient.subject_code, v.code, days) for v, _name, days in rows] == [
        ("BXP-001", "M3", 40),
        ("BXP-001", "M1", 5),
        ("STR-001", "M1", 1),
    ]
    rows = en_client.get(url + "?site=STR").context["rows"]
    assert [v.patient.subject_code for v, _name, _days in rows] == ["STR-001"]
    # A monitor of Bordeaux sees Bordeaux's; asking for Strasbourg shows nothing of it.
    en_client.force_login(world.monica)
    response = en_client.get(url + "?site=STR")
    assert {v.patient.site.code for v, _n, _d in response.context["rows"]} <= {"BXP"}
    assert "STR-001" not in response.content.decode()


def test_the_deviation_list_filters_by_site_and_state(world, built, en_client):
    en_client.force_login(world.diane)
    url = reverse("review:deviations", args=[world.rct.code])
    every = en_client.get(url).context["page"]
    assert every.paginator.count == 4
    standing = en_client.get(url + "?state=open&site=BXP").context["page"]
    assert [d.patient.subject_code for d in standing] == ["BXP-002", "BXP-001"]
    closed = en_client.get(url + "?state=closed").context["page"]
    assert [d.closed_at is not None for d in closed] == [True]
    en_client.force_login(world.monica)
    shown = en_client.get(url).context["page"]
    assert {d.patient.site.code for d in shown} == {"BXP"}


# -- the charts -----------------------------------------------------------------------------


def _attrs(svg: str, cls: str, name: str) -> list[float]:
    return [
        float(m.group(1))
        for m in re.finditer(rf'<[a-z]+ class="{cls}"[^>]*? {name}="([0-9.]+)"', svg)
    ]


def test_bar_heights_are_in_proportion_to_the_values():
    svg = bar_chart([("0-7", 2), ("8-14", 4), ("15-30", 1), ("30+", 0)], label="Ageing", empty="")
    heights = _attrs(svg, "chart-bar", "height")
    assert heights == [heights[1] / 2, heights[1], heights[1] / 4, 0]
    assert svg.startswith("<svg") and 'role="img"' in svg and "<title>Ageing</title>" in svg
    assert 'aria-label="Ageing"' in svg
    assert "style=" not in svg and "<script" not in svg


def test_a_chart_not_tracked_yet_shows_its_empty_state():
    svg = bar_chart(None, label="Open queries by age", empty="Queries are not tracked yet.")
    assert "chart-is-empty" in svg and "Queries are not tracked yet." in svg
    assert 'class="chart-bar"' not in svg


def test_progress_bars_fill_the_share_verified():
    svg = progress_bars([("BXP", 1, 4), ("STR", 3, 3)], label="SDV", empty="")
    tracks = _attrs(svg, "chart-track", "width")
    filled = _attrs(svg, "chart-bar", "width")
    assert filled == [tracks[0] / 4, tracks[1]]
    assert "1 / 4 (25 %)" in svg and "3 / 3 (100 %)" in svg


def test_the_enrolment_steps_up_month_by_month_under_the_dashed_target():
    months = {date(2026, 10, 1): 2, date(2026, 12, 1): 1}
    svg = enrolment_chart(months, target=8, today=date(2026, 12, 15), label="Enrolment", empty="")
    target = re.search(r'<line class="chart-target"[^>]*>', svg).group(0)
    assert 'stroke-dasharray="6 4"' in target and 'data-target="8"' in target
    path = re.search(r'<path class="chart-line" d="([^"]+)" data-total="3"', svg).group(1)
    heights = sorted({float(y) for y in re.findall(r"[ML]?[0-9.]+ ([0-9.]+)", path)})
    base, two, three = heights[-1], heights[1], heights[0]  # y grows downwards
    assert (base - three) == pytest.approx(1.5 * (base - two), abs=0.2)
    # The target is drawn at its height on the same scale: 8 of the axis's top.
    target_y = float(re.search(r'y1="([0-9.]+)"', target).group(1))
    assert (base - target_y) == pytest.approx(8 / 3 * (base - three), abs=0.2)


def test_every_chart_is_well_formed_svg():
    months = {date(2025, 11, 1): 3, date(2026, 6, 1): 4}
    charts = [
        bar_chart([("0-7", 3), ("30+", 12)], label="Ageing", empty=""),
        bar_chart(None, label="Ageing", empty="Not tracked yet."),
        progress_bars([("BXP", 0, 0), ("STR", 2, 5)], label="SDV", empty=""),
        progress_bars([], label="SDV", empty="Nothing to verify."),
        enrolment_chart(months, target=28, today=date(2026, 12, 15), label="Inc", empty=""),
        enrolment_chart({}, target=28, today=date(2026, 12, 15), label="Inc", empty="None."),
    ]
    for svg in charts:
        root = ElementTree.fromstring(svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.get("role") == "img" and root[0].tag.endswith("title")
    assert "Target: 28 patients." in charts[-1]


def test_chart_text_is_escaped():
    svg = bar_chart([("<b>&", 1)], label='A "quoted" <label>', empty="")
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg
    assert 'aria-label="A &quot;quoted&quot; &lt;label&gt;"' in svg


def test_the_site_dashboard_draws_its_charts(world, built, en_client):
    en_client.force_login(world.monica)
    page = en_client.get(site_url(world)).content.decode()
    assert page.count('role="img"') >= 3
    assert "No query is open." in page  # the empty state, not four empty bars
    assert 'class="chart-line"' in page
    assert 'data-done="1" data-total="6"' in page  # the SDV progress bar of BXP


# -- query counts ---------------------------------------------------------------------------

# Session, user, the account's memberships (every permission the page asks about, the
# second factor's included), study, the site (visible, 404 otherwise), the protocol
# versions; the figures: SDV by site, patient and form, overdue visits, SAE reports,
# deviations, enrolment by month, queries not closed by site and age, casebooks awaiting
# signature (seven); the study's sites for the link to the study's dashboard (a monitor
# holds her memberships site by site), the sites she reviews: 16.
SITE_QUERIES = 16
# Session, user, the account's memberships, study, the protocol versions, the study's
# sites, the seven figures: 14, whatever the number of sites and patients.
STUDY_QUERIES = 14


def _many(world, patients: int) -> None:
    for n in range(patients):
        patient = patient_with_forms(world)
        included(patient, date(2026, 9 + n % 3, 1 + n % 27))
        planned(patient, "M1", 2, closed_days_ago=1 + n % 9)
        sae(patient, due_in_hours=-1 if n % 2 else 5)
        deviation(patient, by=world.alice)
        raise_aged(world, patient, days=n % 40)


@pytest.mark.parametrize("patients", [1, 50])
def test_the_site_dashboard_costs_the_same_for_one_patient_and_fifty(
    world, en_client, django_assert_num_queries, patients
):
    _many(world, patients)
    en_client.force_login(world.monica)
    url = site_url(world)
    en_client.get(url)  # the session's first request updates it
    with django_assert_num_queries(SITE_QUERIES):
        response = en_client.get(url)
    figures = response.context["figures"]
    assert (figures.overdue_visits, figures.deviations) == (patients, patients)
    assert figures.enrolled == patients
    assert figures.open_queries == patients


@pytest.mark.parametrize("patients", [1, 50])
def test_the_study_dashboard_costs_the_same_for_one_patient_and_fifty(
    world, en_client, django_assert_num_queries, patients
):
    _many(world, patients)
    en_client.force_login(world.diane)
    url = study_url(world)
    en_client.get(url)
    with django_assert_num_queries(STUDY_QUERIES):
        response = en_client.get(url)
    assert response.context["total"].sae_pending == patients


@pytest.mark.parametrize("patients", [1, 50])
def test_the_lists_cost_the_same_for_one_row_and_fifty(
    world, en_client, django_assert_num_queries, patients
):
    _many(world, patients)
    en_client.force_login(world.diane)
    # Session, user, the account's memberships, study, the site asked for (the filter's
    # check), the rows counted, (the protocol versions, for the visits' names), the page,
    # the sites offered.
    for name, queries in (("review:overdue_visits", 9), ("review:deviations", 8)):
        url = reverse(name, args=[world.rct.code]) + "?site=BXP"
        en_client.get(url)
        with django_assert_num_queries(queries):
            response = en_client.get(url)
        assert response.context["page"].paginator.count == patients
