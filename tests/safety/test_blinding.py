"""The safety screens and the sponsor's SAE emails of a randomised patient never name
the treatment arm to a blinded user."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ecrf.notifications.models import OutboundEmail
from ecrf.patients.models import Allocation, Patient
from ecrf.patients.randomisation import allocation_list_generate
from ecrf.safety.services import (
    ae_create,
    ae_update,
    sae_acknowledge,
    sae_follow_up,
    sae_submit_initial,
)
from tests.factories import MembershipFactory, UserFactory
from tests.safety.conftest import sae_values
from tests.walks.helpers import enrol, rct_pre_inclusion, screen

pytestmark = pytest.mark.django_db
# Random tokens could contain three capitals by chance: they are not page content.
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


@pytest.fixture
def randomised(client, world) -> Patient:
    """A Bordeaux patient screened, consented, found eligible and randomised on the web."""
    keeper = UserFactory(username="keeper")
    MembershipFactory(user=keeper, study=world.rct, role="data_manager", unblinded=True)
    allocation_list_generate(study=world.rct, site=world.bxp, size=8, seed=7, by=keeper)
    client.force_login(world.alice)
    day0 = timezone.localdate() - timedelta(days=2)
    patient = screen(client, world.rct, site="BXP", screening_date=day0 - timedelta(days=10))
    rct_pre_inclusion(client, patient, day0 - timedelta(days=10))
    enrol(client, patient, day0)
    patient.refresh_from_db()
    assert patient.status == Patient.Status.ENROLLED
    return patient


def forbidden_words(patient: Patient) -> re.Pattern:
    """Every arm code and label of the protocol, each word of a label, and the patient's kit."""
    words = {patient.allocation.kit_number}
    for arm in patient.protocol_version.protocol.arms:
        # Both languages: a French page names the arm in French.
        for label in filter(None, (arm.label_en, arm.label_fr)):
            words |= {
                arm.code,
                label,
                *(w for w in label.replace("'", " ").split()[:3] if len(w) > 2),
            }
    assert {"IMA", "PBO", "Imatinib", "Placebo"} <= words
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"\b({alternatives})\b", re.IGNORECASE)


def test_sae_emails_never_name_the_arm(
    world, randomised, password, django_capture_on_commit_callbacks, mailoutbox
):
    patient = randomised
    assert Allocation.objects.get(patient=patient).arm in {"IMA", "PBO"}
    onset = timezone.localdate() - timedelta(days=1)
    values = sae_values(
        term="Interstitial lung disease exacerbation",
        onset_date=onset.isoformat(),
        aware_at=timezone.now() - timedelta(hours=1),
        sae_life_threatening=True,
        relatedness="possible",
        expected=False,
        action_taken="interrupted",
    )
    with django_capture_on_commit_callbacks(execute=True):
        event = ae_create(patient=patient, by=world.alice, values=values)
        initial = sae_submit_initial(
            report=event.sae_reports.get(),
            by=world.alice,
            password=password,
            narrative="Admitted to intensive care; study drug interrupted.",
        )
    sae_acknowledge(report=initial, by=world.diane, sponsor_relatedness="probable")
    with django_capture_on_commit_callbacks(execute=True):
        ae_update(
            event=event,
            by=world.alice,
            values={
                **values,
                "outcome": "recovered",
                "ongoing": False,
                "end_date": timezone.localdate(),
            },
            expected_version=1,
            reason="discharged",
        )
        sae_follow_up(event=event, by=world.alice, password=password, narrative="Discharged.")

    emails = list(OutboundEmail.objects.all())
    assert len(emails) == len(mailoutbox) == 2
    assert all("(suspected SUSAR)" in e.subject for e in emails)
    forbidden = forbidden_words(patient)
    for text in [e.subject for e in emails] + [e.body for e in emails]:
        assert forbidden.search(text) is None, forbidden.search(text)
    for message in mailoutbox:
        assert forbidden.search(message.subject) is None
        assert forbidden.search(message.body) is None


def safety_pages(patient: Patient, event) -> list[str]:
    study, code = patient.study.code, patient.subject_code
    return [
        reverse("safety:ae_list", args=[study]),
        reverse("safety:ae_list", args=[study]) + "?serious=true",
        reverse("safety:sae_list", args=[study]),
        reverse("safety:log", args=[study, code]),
        reverse("safety:create", args=[study, code]),
        reverse("safety:event", args=[study, code, event.number]),
        reverse("safety:edit", args=[study, code, event.number]),
        reverse("patients:detail", args=[study, code]),
        reverse("patients:audit", args=[study, code]),
    ]


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("persona", ["alice", "bob", "monica", "diane"])
def test_safety_screens_never_show_the_arm_to_blinded_users(
    client, world, randomised, password, persona, language
):
    patient = randomised
    values = sae_values(
        term="Pneumonia",
        onset_date=(timezone.localdate() - timedelta(days=1)).isoformat(),
        aware_at=timezone.now() - timedelta(hours=1),
        relatedness="probable",
        expected=False,
    )
    event = ae_create(patient=patient, by=world.alice, values=values)
    report = sae_submit_initial(report=event.sae_reports.get(), by=world.alice, password=password)
    sae_acknowledge(report=report, by=world.diane)
    arm = patient.protocol_version.protocol.arms
    # The codes and the full labels: the study's acronym (Imatinib-Scleroderma) is shown
    # everywhere and names no arm.
    words = re.compile(
        r"\b(" + "|".join(re.escape(w) for a in arm for w in (a.code, a.label)) + r")\b"
    )
    client.force_login(getattr(world, persona))
    seen = 0
    for url in safety_pages(patient, event):
        response = client.get(url, headers={"accept-language": language})
        assert response.status_code in (200, 403), url
        html = CSRF.sub("", response.content.decode())
        assert words.search(html) is None, (url, words.search(html))
        seen += response.status_code == 200
    assert seen >= 6  # a monitor may not record or edit, everyone else reads every page
