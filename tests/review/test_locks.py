"""Freeze and lock, enforced by the save services whatever the entry point.

Diane (data manager of both studies) freezes or locks a form, a visit, Alice's patient's
casebook, the Bordeaux site or the whole trial; the save services then refuse Alice's
changes, naming what is locked, by whom and since when. A freeze lets review through, a
lock does not; lifting needs a reason and the data can change again.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from ecrf.accounts.access import roles_at_every_site
from ecrf.accounts.models import Role
from ecrf.accounts.permissions import Action, can
from ecrf.crfs.models import Consent
from ecrf.crfs.services import crf_save
from ecrf.patients.locks import active_lock, casebook_locks, require_unlocked, visit_locks
from ecrf.patients.models import DataLock, FormIndexEntry, Patient
from ecrf.patients.services import patient_create, patient_plan_inclusion
from ecrf.patients.visits import visit_add_unscheduled, visit_record_date, visits_schedule_from_day0
from ecrf.review.locks import data_freeze, data_lock, data_unlock, study_lock_checklist
from ecrf.review.queries import query_close, query_raise
from ecrf.review.sdv import sdv_mark
from ecrf.safety.models import SaeReport
from ecrf.safety.services import ae_create, ae_update, sae_acknowledge, sae_submit_initial
from ecrf.studies.models import StudySite
from tests.factories import PASSWORD, MembershipFactory, UserFactory
from tests.safety.conftest import CONSENT_DAY, DAY0, ae_values, consent, sae_values

pytestmark = pytest.mark.django_db

REASON = "Interim analysis cut-off"
SINCE = "15 December 2026"  # tests.clock.NOW
LOCKED = f" is locked by Diane Martin since {SINCE}: no change is possible."
FROZEN = f" is frozen by Diane Martin since {SINCE}: data cannot change; review goes on."


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def client() -> Client:
    """A browser that asks for English (French is the default language)."""
    return Client(headers={"accept-language": "en"})


@pytest.fixture
def diane(world):
    world.diane.first_name, world.diane.last_name = "Diane", "Martin"
    world.diane.save(update_fields=["first_name", "last_name"])
    return world.diane


@pytest.fixture
def patient(world, diane) -> Patient:
    """Screened and consented at Bordeaux (BXP-004: the world holds BXP-001 to 003)."""
    screened = patient_create(
        study=world.rct, site=world.bxp, by=world.alice, screening_date=CONSENT_DAY
    )
    return consent(screened, by=world.alice)


@pytest.fixture
def event(world, patient):
    return ae_create(patient=patient, by=world.alice, values=ae_values())


def scr(patient):
    return patient.visits.get(code="SCR")


# What each level names, and how the refusal begins.
TARGETS = {
    "study": (lambda world, patient, event: {"study": world.rct}, "Study NCT00479934"),
    "site": (
        lambda world, patient, event: {"study": world.rct, "site": world.bxp},
        "Site BXP of study NCT00479934",
    ),
    "casebook": (lambda world, patient, event: {"patient": patient}, "The casebook of BXP-004"),
    "visit": (lambda world, patient, event: {"visit": scr(patient)}, "Visit SCR of BXP-004"),
    "form": (
        lambda world, patient, event: {"entry": Consent.objects.get(patient=patient)},
        "Form Informed consent of visit SCR of BXP-004",
    ),
    "event": (
        lambda world, patient, event: {"entry": event},
        "Form Adverse events of BXP-004",
    ),
}
PLACE = {"freeze": (data_freeze, FROZEN), "lock": (data_lock, LOCKED)}


def _correct_consent(world, patient, event):
    crf_save(
        visit=scr(patient),
        form_code="consent",
        values={"consent_version": "2.2"},
        by=world.alice,
        expected_version=1,
        reason="Version misread on the signed form",
    )
    return Consent.objects.get(patient=patient).version == 2


def _redate_visit(world, patient, event):
    visit = visit_record_date(
        visit=scr(patient),
        by=world.alice,
        visit_date=CONSENT_DAY + timedelta(days=1),
        change_reason="Date typed wrongly at entry",
    )
    return visit.visit_date == CONSENT_DAY + timedelta(days=1)


def _update_event(world, patient, event):
    updated = ae_update(
        event=event,
        by=world.alice,
        values=ae_values(ctcae_grade=2),
        expected_version=event.version,
        reason="Grade reassessed at the visit",
    )
    return updated.version == event.version + 1


SERVICES = {
    "crf_save": _correct_consent,
    "visit_record_date": _redate_visit,
    "ae_update": _update_event,
}
# Which changes each level refuses: everything from the casebook up; a visit's own data;
# one form's own data.
REFUSED = {
    "study": set(SERVICES),
    "site": set(SERVICES),
    "casebook": set(SERVICES),
    "visit": {"crf_save", "visit_record_date"},
    "form": {"crf_save"},
    "event": {"ae_update"},
}


@pytest.mark.parametrize("service", list(SERVICES))
@pytest.mark.parametrize("kind", list(PLACE))
@pytest.mark.parametrize("level", list(TARGETS))
def test_every_level_and_kind_refuses_the_changes_it_covers_with_a_sentence(
    world, diane, patient, event, level, kind, service
):
    target, subject = TARGETS[level]
    place, ending = PLACE[kind]
    place(by=diane, reason=REASON, **target(world, patient, event))
    change = SERVICES[service]
    if service in REFUSED[level]:
        with pytest.raises(ValidationError) as refused:
            change(world, patient, event)
        assert refused.value.messages == [subject + ending]
        assert refused.value.code == "locked"
        # Nothing changed.
        assert Consent.objects.get(patient=patient).version == 1
        assert scr(patient).visit_date == CONSENT_DAY
        assert type(event).objects.get(pk=event.pk).version == event.version
    else:
        assert change(world, patient, event)


def test_a_new_form_at_a_visit_whose_other_form_is_locked_is_entered(world, diane, patient):
    data_lock(by=diane, reason=REASON, entry=Consent.objects.get(patient=patient))
    saved = crf_save(
        visit=scr(patient),
        form_code="demographics",
        values={"birth_year": 1968, "sex": "F", "childbearing_potential": False},
        by=world.alice,
        expected_version=0,
    )
    assert saved.pk is not None


def test_every_entry_point_to_a_casebook_meets_its_lock(world, diane, patient):
    """Adding a visit, planning the inclusion, a new event: all refused once locked."""
    data_lock(by=diane, reason=REASON, patient=patient)
    message = "The casebook of BXP-004" + LOCKED
    calls = [
        lambda: patient_plan_inclusion(
            patient=patient, by=world.alice, planned_date=CONSENT_DAY + timedelta(days=7)
        ),
        lambda: ae_create(patient=patient, by=world.alice, values=ae_values()),
    ]
    for call in calls:
        with pytest.raises(ValidationError) as refused:
            call()
        assert refused.value.messages == [message]
    Patient.objects.filter(pk=patient.pk).update(status=Patient.Status.ENROLLED, day0_date=DAY0)
    patient.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        visit_add_unscheduled(patient=patient, by=world.alice)
    assert refused.value.messages == [message]


def test_a_locked_site_screens_no_new_patient(world, diane):
    data_freeze(by=diane, reason=REASON, study=world.rct, site=world.bxp)
    with pytest.raises(ValidationError) as refused:
        patient_create(study=world.rct, site=world.bxp, by=world.alice, screening_date=CONSENT_DAY)
    assert refused.value.messages == ["Site BXP of study NCT00479934" + FROZEN]
    # Another site of the study is not concerned.
    assert patient_create(
        study=world.rct, site=world.str_, by=world.charlie, screening_date=CONSENT_DAY
    )


def test_a_frozen_casebook_takes_no_sae_report_but_the_sponsor_still_acknowledges(
    world, diane, patient
):
    event = ae_create(patient=patient, by=world.alice, values=sae_values())
    report = event.sae_reports.get()
    freeze = data_freeze(by=diane, reason=REASON, patient=patient)
    with pytest.raises(ValidationError) as refused:
        sae_submit_initial(report=report, by=world.alice, password=PASSWORD)
    assert refused.value.messages == ["The casebook of BXP-004" + FROZEN]
    # Lifted with a reason, the report goes; frozen again, the sponsor's receipt goes too
    # (it changes none of the site's data), but not under a lock.
    data_unlock(by=diane, lock=freeze, reason="SAE to report on the frozen casebook")
    sae_submit_initial(report=report, by=world.alice, password=PASSWORD)
    data_freeze(by=diane, reason=REASON, patient=patient)
    lock = data_lock(by=diane, reason=REASON, patient=patient)
    with pytest.raises(ValidationError) as refused:
        sae_acknowledge(report=SaeReport.objects.get(pk=report.pk), by=diane)
    assert refused.value.messages == ["The casebook of BXP-004" + LOCKED]
    data_unlock(by=diane, lock=lock, reason="Sponsor receipt to be recorded")
    acknowledged = sae_acknowledge(report=SaeReport.objects.get(pk=report.pk), by=diane)
    assert acknowledged.acknowledged_at is not None


# -- review goes on under a freeze ----------------------------------------------------------------


def test_a_freeze_lets_review_through_and_a_lock_does_not(world, diane, patient):
    visit = scr(patient)
    data_freeze(by=diane, reason=REASON, visit=visit)
    require_unlocked(patient=patient, visit=visit, review=True)  # SDV, queries go on
    with pytest.raises(ValidationError):
        require_unlocked(patient=patient, visit=visit)
    data_lock(by=diane, reason=REASON, patient=patient)
    with pytest.raises(ValidationError) as refused:
        require_unlocked(patient=patient, visit=visit, review=True)
    assert refused.value.messages == ["The casebook of BXP-004" + LOCKED]


def test_the_strongest_lock_is_named_first_in_two_queries(
    world, diane, patient, django_assert_num_queries
):
    visit = scr(patient)
    data_freeze(by=diane, reason=REASON, study=world.rct)
    data_freeze(by=diane, reason=REASON, visit=visit)
    lock = data_lock(by=diane, reason=REASON, visit=visit)
    consent_form = Consent.objects.get(patient=patient)
    # Whether one holds, without joins; then the one found with what names it.
    with django_assert_num_queries(2):
        found = active_lock(patient=patient, visit=visit, entry=consent_form)
    assert found == lock  # a lock before a freeze, even a broader one
    data_unlock(by=diane, lock=lock, reason="Correction requested by the sponsor")
    # Lifting the lock leaves the freezes: the broadest first.
    assert active_lock(patient=patient, visit=visit).level == DataLock.Level.STUDY


# -- lifting --------------------------------------------------------------------------------------


def test_lifting_needs_a_reason_and_lets_the_data_change_again(world, diane, patient):
    lock = data_lock(by=diane, reason=REASON, visit=scr(patient))
    with pytest.raises(ValidationError):
        _correct_consent(world, patient, None)
    for reason in ("", "typo", "   x    y    "):
        with pytest.raises(ValidationError) as refused:
            data_unlock(by=diane, lock=lock, reason=reason)
        assert "reason" in refused.value.error_dict
    assert DataLock.objects.get(pk=lock.pk).lifted_at is None
    lifted = data_unlock(by=diane, lock=lock, reason="Query answered after the lock")
    assert (lifted.lifted_by, lifted.lift_reason) == (diane, "Query answered after the lock")
    assert lifted.lifted_at is not None
    assert _correct_consent(world, patient, None)
    with pytest.raises(ValidationError) as again:
        data_unlock(by=diane, lock=lock, reason="Query answered after the lock")
    assert again.value.messages == [f"This was lifted already, by Diane Martin on {SINCE}."]


def test_placing_needs_a_reason_and_the_same_kind_twice_is_refused(world, diane, patient):
    with pytest.raises(ValidationError) as refused:
        data_freeze(by=diane, reason="short", patient=patient)
    assert refused.value.message_dict == {"reason": ["Reason: give at least 10 characters."]}
    data_freeze(by=diane, reason=REASON, patient=patient)
    with pytest.raises(ValidationError) as twice:
        data_freeze(by=diane, reason=REASON, patient=patient)
    assert twice.value.messages == ["Already in place. The casebook of BXP-004" + FROZEN]
    # A lock may stand over the freeze.
    assert data_lock(by=diane, reason=REASON, patient=patient).kind == "lock"


def test_a_lock_is_never_deleted_nor_edited_in_the_database(world, diane, patient):
    lock = data_lock(by=diane, reason=REASON, patient=patient)
    for change in (
        lambda: DataLock.objects.filter(pk=lock.pk).delete(),
        lambda: DataLock.objects.filter(pk=lock.pk).update(reason="Something else entirely"),
        lambda: DataLock.objects.filter(pk=lock.pk).update(kind="freeze"),
    ):
        with pytest.raises(DatabaseError, match="Cannot"), transaction.atomic():
            change()
    data_unlock(by=diane, lock=lock, reason="Correction requested by the sponsor")
    with pytest.raises(DatabaseError, match="Cannot"), transaction.atomic():
        DataLock.objects.filter(pk=lock.pk).update(lift_reason="Rewritten after the fact")


def test_each_level_names_its_own_targets_only(world, diane, patient):
    with pytest.raises(IntegrityError, match="data_lock_level_targets"), transaction.atomic():
        DataLock.objects.create(
            kind="lock", level="visit", study=world.rct, site=world.bxp, patient=patient,
            reason=REASON, placed_by=diane,
        )  # fmt: skip
    with pytest.raises(IntegrityError, match="data_lock_level_targets"), transaction.atomic():
        DataLock.objects.create(
            kind="lock", level="study", study=world.rct, site=world.bxp, reason=REASON,
            placed_by=diane,
        )  # fmt: skip


# -- who may --------------------------------------------------------------------------------------


@pytest.fixture
def dora(world):
    """Data manager of the cohort study only."""
    user = UserFactory(username="dora")
    MembershipFactory(user=user, study=world.cohort, site=None, role=Role.DATA_MANAGER)
    return user


@pytest.mark.parametrize("persona", ["alice", "bob", "monica", "charlie", "rene", "dora"])
def test_only_the_studys_data_manager_freezes_locks_and_lifts(world, diane, dora, patient, persona):
    by = dora if persona == "dora" else getattr(world, persona)
    for place in (data_freeze, data_lock):
        for target in ({"patient": patient}, {"study": world.rct}, {"visit": scr(patient)}):
            with pytest.raises(PermissionDenied):
                place(by=by, reason=REASON, **target)
    lock = data_lock(by=diane, reason=REASON, study=world.rct, site=world.bxp)
    with pytest.raises(PermissionDenied):
        data_unlock(by=by, lock=lock, reason="Correction requested by the sponsor")
    assert DataLock.objects.get(pk=lock.pk).lifted_at is None
    assert DataLock.objects.count() == 1


def test_the_refusal_of_a_study_wide_act_says_so(world, patient):
    with pytest.raises(PermissionDenied) as refused:
        data_lock(by=world.monica, reason=REASON, study=world.rct)
    assert str(refused.value) == (
        "Your role does not allow you to lock data for the whole study (data manager of "
        "every site only)."
    )


def test_a_study_wide_role_is_one_held_at_every_site(world):
    monica = world.monica
    assert roles_at_every_site(world.diane, study=world.rct) == {Role.DATA_MANAGER}
    assert roles_at_every_site(monica, study=world.rct) == set()
    sites = StudySite.objects.filter(study=world.rct).exclude(site=world.bxp)
    for study_site in sites:
        MembershipFactory(user=monica, study=world.rct, site=study_site.site, role=Role.MONITOR)
    assert roles_at_every_site(monica, study=world.rct) == {Role.MONITOR}
    assert can(monica, Action.VIEW, study=world.rct, every_site=True)
    assert not can(monica, Action.LOCK, study=world.rct, every_site=True)


# -- the audit trail ------------------------------------------------------------------------------


def test_placing_and_lifting_are_audited_with_who_and_why(client, world, diane, patient):
    lock = data_freeze(by=diane, reason=REASON, visit=scr(patient))
    data_unlock(by=diane, lock=lock, reason="Correction requested by the sponsor")
    events = list(DataLock.pgh_event_model.objects.filter(pgh_obj=lock).order_by("pgh_id"))
    assert [e.pgh_label for e in events] == ["insert", "update"]
    assert [e.pgh_context["user"] for e in events] == [diane.pk, diane.pk]
    assert [e.pgh_context["reason"] for e in events] == [
        f"visit freeze: {REASON}",
        "visit freeze lifted: Correction requested by the sponsor",
    ]
    # The patient's trail reads them.
    client.force_login(diane)
    response = client.get(reverse("patients:audit", args=[world.rct.code, patient.subject_code]))
    assert response.status_code == 200
    assert "Correction requested by the sponsor" in response.content.decode()


# -- the pre-lock checklist -----------------------------------------------------------------------


def test_the_pre_lock_checklist_counts_what_still_stands(world, diane, patient):
    ae_create(patient=patient, by=world.alice, values=sae_values())
    enrolled = patient_create(
        study=world.rct, site=world.str_, by=world.charlie, screening_date=CONSENT_DAY
    )
    Patient.objects.filter(pk=enrolled.pk).update(status=Patient.Status.ENROLLED, day0_date=DAY0)
    visits_schedule_from_day0(patient=Patient.objects.get(pk=enrolled.pk))
    today = timezone.localdate()
    overdue = [
        v.code
        for v in enrolled.visits.filter(status="planned")
        if v.latest_date and v.latest_date < today
    ]
    # Day 0 on 29 September, today 15 December: the screening visit never dated, M0, M1.
    assert overdue == ["SCR", "M0", "M1"]
    query = query_raise(
        by=world.diane,
        entry=FormIndexEntry.objects.get(patient=patient, form_code="consent"),
        text="Please check the consent date.",
    )
    closed = query_raise(
        by=world.diane,
        entry=FormIndexEntry.objects.get(patient=patient, form_code="consent"),
        text="Raised on the wrong patient.",
    )
    query_close(by=world.diane, query=closed, text="Raised on the wrong patient.")
    items = {item.code: item for item in study_lock_checklist(world.rct)}
    assert query.status == "open"
    assert {code: item.count for code, item in items.items()} == {
        "open_queries": 1,  # the closed one is settled
        "sdv": 2,  # BXP-004's consent (always verified) and serious adverse event
        "signatures": 0,  # nobody ended the study nor did every visit
        "sae_not_reported": 1,
        "screening": 6,  # BXP-001 to 004, STR-001 and 002
        "overdue": 3,
    }
    assert items["sae_not_reported"].url == reverse("safety:sae_list", args=[world.rct.code])
    assert items["open_queries"].url == reverse("review:queries", args=[world.rct.code])
    assert items["signatures"].url == reverse("review:signatures", args=[world.rct.code])
    assert items["screening"].url.endswith("?status=screening")
    assert items["sdv"].url == reverse("review:matrix", args=[world.rct.code])
    assert items["overdue"].url == reverse("review:overdue_visits", args=[world.rct.code])

    consent_entry = FormIndexEntry.objects.get(patient=patient, form_code="consent")
    sdv_mark(by=world.monica, entry=consent_entry)
    items = {item.code: item for item in study_lock_checklist(world.rct)}
    assert items["sdv"].count == 1  # the serious event is left


# -- the screens ----------------------------------------------------------------------------------


def _casebook(client, patient):
    return client.get(reverse("patients:detail", args=[patient.study.code, patient.subject_code]))


def _visit_page(client, patient, code="SCR"):
    return client.get(
        reverse("crfs:visit", args=[patient.study.code, patient.subject_code, code, 1])
    )


def test_a_data_manager_freezes_a_casebook_from_its_page_and_everyone_sees_the_banner(
    client, world, diane, patient
):
    client.force_login(diane)
    page = _casebook(client, patient)
    assert b'data-testid="lock-casebook"' in page.content
    url = reverse("review:casebook_lock", args=[world.rct.code, patient.subject_code])
    assert client.get(url).status_code == 200
    response = client.post(url, {"kind": "freeze", "reason": "short"})
    assert response.status_code == 400
    assert response.context["form"].errors == {"reason": ["Reason: give at least 10 characters."]}
    response = client.post(url, {"kind": "freeze", "reason": REASON})
    assert response.status_code == 302
    assert response.url == reverse("patients:detail", args=[world.rct.code, patient.subject_code])
    client.force_login(world.alice)
    page = _casebook(client, patient)
    text = page.content.decode()
    assert f"Frozen by Diane Martin on {SINCE} ({REASON})" in text
    assert page.context["enrol_form"] is None and page.context["screen_fail_form"] is None
    assert b'data-testid="lock-casebook"' not in page.content
    # The visit page says it too, and offers no date to change.
    visit = _visit_page(client, patient)
    assert f"Frozen by Diane Martin on {SINCE} ({REASON})" in visit.content.decode()
    assert not visit.context["can_enter"] and not visit.context["can_correct"]
    assert "Save the date" not in visit.content.decode()


def test_a_locked_visit_shows_its_lock_and_refuses_a_posted_date_with_the_message(
    client, world, diane, patient
):
    client.force_login(diane)
    url = reverse("review:visit_lock", args=[world.rct.code, patient.subject_code, "SCR", 1])
    response = client.post(url, {"kind": "lock", "reason": REASON})
    assert response.status_code == 302
    lock = DataLock.objects.get()
    assert (lock.level, lock.kind, lock.visit) == ("visit", "lock", scr(patient))
    client.force_login(world.alice)
    casebook = _casebook(client, patient)
    assert b'data-testid="visit-lock"' in casebook.content
    page = _visit_page(client, patient)
    assert f"Locked by Diane Martin on {SINCE} ({REASON})" in page.content.decode()
    # A page opened before the lock posts anyway: the service refuses, with its reason.
    visit = scr(patient)
    response = client.post(
        reverse("crfs:visit", args=[world.rct.code, patient.subject_code, "SCR", 1]),
        {
            "visit_date": (CONSENT_DAY + timedelta(days=1)).isoformat(),
            "version": visit.version,
            "change_reason": "Date typed wrongly at entry",
        },
    )
    assert response.status_code == 200
    assert response.context["date_form"].non_field_errors() == ["Visit SCR of BXP-004" + LOCKED]
    # The form page has no Save button, and says why.
    form = client.get(
        reverse("crfs:form", args=[world.rct.code, patient.subject_code, "SCR", 1, "consent"])
    )
    assert form.context["lock_message"] == "Visit SCR of BXP-004" + LOCKED
    assert not form.context["can_enter"]
    # Its fields are shown read-only, not left to be typed into for nothing.
    html = form.content.decode()
    assert '<fieldset class="crf-fields" disabled data-testid="crf-read-only">' in html
    assert 'type="submit"' not in html.split("data-crf")[1]


def test_a_form_lock_turns_its_edit_button_into_view(client, world, diane, patient):
    data_freeze(by=diane, reason=REASON, entry=Consent.objects.get(patient=patient))
    client.force_login(world.alice)
    page = _visit_page(client, patient)
    listed = {
        code: instances for code, _label, _rep, instances, _req, _lacks in page.context["rows"]
    }
    assert listed["consent"][0].locked
    assert page.context["can_enter"]  # the visit itself is not frozen


def test_lifting_from_the_banner_asks_for_the_reason(client, world, diane, patient):
    lock = data_lock(by=diane, reason=REASON, patient=patient)
    client.force_login(diane)
    page = _casebook(client, patient)
    url = reverse("review:lift", args=[world.rct.code, lock.pk])
    assert url.encode() in page.content
    assert client.post(url, {"reason": "no"}).status_code == 400
    response = client.post(url, {"reason": "Late laboratory results to enter"})
    assert response.status_code == 302
    assert response.url == reverse("patients:detail", args=[world.rct.code, patient.subject_code])
    assert DataLock.objects.get(pk=lock.pk).lift_reason == "Late laboratory results to enter"
    assert _correct_consent(world, patient, None)


def test_the_study_page_shows_the_checklist_and_places_the_database_lock(
    client, world, diane, patient
):
    client.force_login(diane)
    url = reverse("review:locks", args=[world.rct.code])
    page = client.get(url)
    assert page.status_code == 200
    assert [item.code for item in page.context["checklist"]] == [
        "open_queries", "sdv", "signatures", "sae_not_reported", "screening", "overdue",
    ]  # fmt: skip
    assert b'data-testid="pre-lock-checklist"' in page.content
    response = client.post(
        url, {"level": "site", "site-site": "BXP", "site-kind": "freeze", "site-reason": REASON}
    )
    assert response.status_code == 302
    response = client.post(url, {"level": "study", "study-kind": "lock", "study-reason": REASON})
    assert response.status_code == 302
    assert sorted(DataLock.objects.values_list("level", "kind")) == [
        ("site", "freeze"),
        ("study", "lock"),
    ]
    page = client.get(url)
    assert [shown.target for shown in page.context["in_place"]] == ["Study NCT00479934", "Site BXP"]
    client.force_login(world.alice)
    assert (
        f"Locked by Diane Martin on {SINCE} ({REASON})"
        in _casebook(client, patient).content.decode()
    )


@pytest.mark.parametrize("persona", ["alice", "bob", "monica"])
def test_site_staff_and_monitors_get_no_lock_page(client, world, patient, persona):
    client.force_login(getattr(world, persona))
    urls = [
        reverse("review:locks", args=[world.rct.code]),
        reverse("review:casebook_lock", args=[world.rct.code, patient.subject_code]),
        reverse("review:visit_lock", args=[world.rct.code, patient.subject_code, "SCR", 1]),
    ]
    for url in urls:
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"kind": "lock", "reason": REASON}).status_code == 403, url
    assert not DataLock.objects.exists()
    assert b'data-testid="lock-casebook"' not in _casebook(client, patient).content


def test_another_sites_patient_visit_or_lock_is_a_404(client, world, diane, patient):
    lock = data_freeze(by=diane, reason=REASON, patient=patient)
    client.force_login(world.charlie)  # investigator at Strasbourg
    for url in (
        reverse("review:casebook_lock", args=[world.rct.code, patient.subject_code]),
        reverse("review:visit_lock", args=[world.rct.code, patient.subject_code, "SCR", 1]),
        reverse("review:lift", args=[world.rct.code, lock.pk]),
    ):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"kind": "lock", "reason": REASON}).status_code == 404, url
    client.force_login(world.rene)  # another study
    assert client.get(reverse("review:locks", args=[world.rct.code])).status_code == 404
    # The locks list shows nobody another site's locks.
    assert not DataLock.objects.visible_to(world.charlie).exists()
    assert DataLock.objects.visible_to(world.alice).get() == lock


def test_a_study_wide_lock_is_visible_to_every_member_of_the_study(world, diane):
    lock = data_lock(by=diane, reason=REASON, study=world.rct)
    assert DataLock.objects.visible_to(world.charlie).get() == lock
    assert not DataLock.objects.visible_to(world.rene).exists()


def test_the_screens_read_every_lock_of_a_casebook_or_visit_at_once(
    world, diane, patient, django_assert_num_queries
):
    visit = scr(patient)
    # Another casebook's lock is not this one's.
    other = patient_create(
        study=world.rct, site=world.bxp, by=world.alice, screening_date=CONSENT_DAY
    )
    data_lock(by=diane, reason=REASON, patient=other)
    data_freeze(by=diane, reason=REASON, study=world.rct)
    data_freeze(by=diane, reason=REASON, study=world.rct, site=world.bxp)
    data_lock(by=diane, reason=REASON, visit=visit)
    data_lock(by=diane, reason=REASON, entry=FormIndexEntry.objects.get(form_code="consent"))
    with django_assert_num_queries(2):  # which hold, then those with their names
        book = casebook_locks(patient)
    assert [(lock.kind, lock.level) for lock in book] == [
        ("lock", "visit"), ("lock", "form"), ("freeze", "study"), ("freeze", "site"),
    ]  # fmt: skip
    with django_assert_num_queries(2):
        assert len(visit_locks(visit)) == 4
    for lock in book:
        data_unlock(by=diane, lock=lock, reason="Correction requested by the sponsor")
    with django_assert_num_queries(1):  # none holds: the first query says so
        assert casebook_locks(patient) == []


def test_the_casebook_and_visit_pages_cost_one_query_more_with_locks_however_many(
    client, world, diane, patient
):
    client.force_login(world.alice)
    pages = [
        reverse("patients:detail", args=[world.rct.code, patient.subject_code]),
        reverse("crfs:visit", args=[world.rct.code, patient.subject_code, "SCR", 1]),
    ]
    client.get(pages[0])  # the session's first request updates it

    def cost(url):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    before = [cost(url) for url in pages]
    data_freeze(by=diane, reason=REASON, study=world.rct)
    # One lock: the query that finds it, then the one that reads it with its names.
    assert [cost(url) for url in pages] == [n + 1 for n in before]
    data_freeze(by=diane, reason=REASON, study=world.rct, site=world.bxp)
    data_lock(by=diane, reason=REASON, visit=scr(patient))
    data_lock(by=diane, reason=REASON, entry=Consent.objects.get(patient=patient))
    assert [cost(url) for url in pages] == [n + 1 for n in before]


def test_the_adverse_event_page_says_it_is_frozen_and_offers_no_edit(
    client, world, diane, patient, event
):
    url = reverse("safety:event", args=[world.rct.code, patient.subject_code, event.number])
    client.force_login(world.alice)
    assert client.get(url).context["can_record"]
    data_freeze(by=diane, reason=REASON, entry=event)
    page = client.get(url)
    assert not page.context["can_record"]
    assert page.context["lock_message"] == "Form Adverse events of BXP-004" + FROZEN
    assert reverse("safety:edit", args=[world.rct.code, patient.subject_code, 1]).encode() not in (
        page.content
    )


def test_an_sae_report_is_locked_through_its_event(world, diane, patient):
    event = ae_create(patient=patient, by=world.alice, values=sae_values())
    with pytest.raises(ValidationError) as refused:
        data_lock(by=diane, reason=REASON, entry=event.sae_reports.get())
    assert refused.value.messages == [
        "Freeze or lock the adverse event: its SAE reports follow it."
    ]
    data_lock(by=diane, reason=REASON, entry=event)
    with pytest.raises(ValidationError) as refused:
        sae_submit_initial(report=event.sae_reports.get(), by=world.alice, password=PASSWORD)
    assert refused.value.messages == ["Form Adverse events of BXP-004" + LOCKED]
