"""Emergency unblinding: the patient's investigator, a reason, the password; the sponsor told."""

from __future__ import annotations

import pghistory
import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from ecrf.accounts.lockout import locked_until
from ecrf.audit.models import AuthEvent
from ecrf.notifications.models import OutboundEmail
from ecrf.patients.models import Unblinding
from ecrf.patients.unblinding import emergency_unblind, is_unblinded
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

SPONSOR = ["pharmacovigilance@chu-bordeaux.example"]
ARM_WORDS = ("IMA", "PBO", "Imatinib mesylate 400 mg/day", "Placebo")
REASON = "Suspected severe hepatotoxicity, treatment decision needed"


def unblind_url(world, patient):
    return reverse("patients:unblind", args=[world.rct.code, patient.subject_code])


class TestService:
    def test_wrong_password_is_refused_and_nothing_is_saved_or_sent(
        self, world, randomised, django_capture_on_commit_callbacks
    ):
        patient = world.bxp_patients[0]
        with (
            django_capture_on_commit_callbacks(execute=True),
            pytest.raises(ValidationError) as excinfo,
        ):
            emergency_unblind(patient=patient, by=world.alice, reason=REASON, password="wrong")
        assert set(excinfo.value.message_dict) == {"password"}
        assert not Unblinding.objects.exists()
        assert not OutboundEmail.objects.exists()
        assert mail.outbox == []
        assert not is_unblinded(patient)

    def test_blank_reason_is_refused(self, world, randomised):
        with pytest.raises(ValidationError) as excinfo:
            emergency_unblind(
                patient=world.bxp_patients[0], by=world.alice, reason="  \n", password=PASSWORD
            )
        assert set(excinfo.value.message_dict) == {"reason"}
        assert not Unblinding.objects.exists()

    def test_investigator_learns_the_arm_and_the_sponsor_is_emailed_once_on_commit(
        self, world, randomised, django_capture_on_commit_callbacks
    ):
        patient = world.bxp_patients[0]
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            arm = emergency_unblind(
                patient=patient, by=world.alice, reason=REASON, password=PASSWORD
            )
            assert mail.outbox == []  # nothing leaves before the commit
        assert arm == randomised[0].arm
        assert len(callbacks) == 1

        unblinding = Unblinding.objects.get()
        assert (unblinding.patient, unblinding.by, unblinding.reason) == (
            patient,
            world.alice,
            REASON,
        )
        assert is_unblinded(patient)
        assert not is_unblinded(world.bxp_patients[1])
        (event,) = pghistory.models.Events.objects.tracks(unblinding)
        assert event.pgh_context["user"] == world.alice.pk
        assert REASON in event.pgh_context["reason"]
        assert "emergency unblinding" in event.pgh_context["reason"]

        email = OutboundEmail.objects.get()
        assert email.dedupe_key == f"unblinding:{unblinding.pk}"
        assert email.recipients == SPONSOR
        assert email.status == OutboundEmail.Status.SENT
        (message,) = mail.outbox
        assert message.to == SPONSOR
        text = message.subject + "\n" + message.body
        for expected in (
            "NCT00479934",
            "BXP",
            patient.subject_code,
            "alice",
            REASON,
            unblinding.at.strftime("%Y-%m-%d %H:%M"),
            "UTC",
            "disclosed to the investigator",
        ):
            assert expected in text, expected
        for word in ARM_WORDS:
            assert word not in text, word

    def test_each_unblinding_is_its_own_record_and_email(
        self, world, randomised, django_capture_on_commit_callbacks
    ):
        patient = world.bxp_patients[0]
        with django_capture_on_commit_callbacks(execute=True):
            emergency_unblind(patient=patient, by=world.alice, reason=REASON, password=PASSWORD)
            emergency_unblind(patient=patient, by=world.alice, reason="again", password=PASSWORD)
        assert Unblinding.objects.count() == 2
        assert len(mail.outbox) == 2

    @pytest.mark.parametrize("persona", ["bob", "monica", "diane", "charlie"])
    def test_only_the_patients_investigator_may_unblind(self, world, randomised, persona):
        with pytest.raises(PermissionDenied):
            emergency_unblind(
                patient=world.bxp_patients[0],
                by=getattr(world, persona),
                reason=REASON,
                password=PASSWORD,
            )
        assert not Unblinding.objects.exists()

    def test_patient_not_randomised_has_nothing_to_disclose(self, world, randomised):
        with pytest.raises(ValidationError, match="not been randomised"):
            emergency_unblind(
                patient=world.bxp_patients[2], by=world.alice, reason=REASON, password=PASSWORD
            )
        assert not Unblinding.objects.exists()


class TestPage:
    def test_investigator_sees_the_arm_on_the_response_only(
        self, client, world, randomised, django_capture_on_commit_callbacks
    ):
        patient = world.bxp_patients[0]
        client.force_login(world.alice)
        url = unblind_url(world, patient)
        page = client.get(url, headers={"accept-language": "en"})
        assert page.status_code == 200
        assert "Unblind this patient" in page.content.decode()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                url, {"reason": REASON, "password": PASSWORD}, headers={"accept-language": "en"}
            )
        body = response.content.decode()
        label = {"IMA": "Imatinib mesylate 400 mg/day", "PBO": "Placebo"}[randomised[0].arm]
        assert response.status_code == 200
        assert label in body and f"({randomised[0].arm})" in body
        assert "no-store" in response["Cache-Control"]
        assert len(mail.outbox) == 1
        # Nowhere else: not in the session, not on the next pages.
        assert all(
            randomised[0].arm not in str(value) and label not in str(value)
            for value in client.session.values()
        )
        for next_page in (
            url,
            reverse("patients:detail", args=[world.rct.code, patient.subject_code]),
        ):
            html = client.get(next_page).content.decode()
            assert label not in html and f"({randomised[0].arm})" not in html

    def test_wrong_password_shows_a_field_error_and_no_arm(self, client, world, randomised):
        client.force_login(world.alice)
        response = client.post(
            unblind_url(world, world.bxp_patients[0]), {"reason": REASON, "password": "nope"}
        )
        assert response.status_code == 200
        assert "password" in response.context["form"].errors
        assert response.context["arm"] is None
        assert not Unblinding.objects.exists()

    def test_missing_reason_is_a_form_error(self, client, world, randomised):
        client.force_login(world.alice)
        response = client.post(
            unblind_url(world, world.bxp_patients[0]), {"reason": "", "password": PASSWORD}
        )
        assert "reason" in response.context["form"].errors
        assert not Unblinding.objects.exists()

    @pytest.mark.parametrize(
        ("persona", "status"),
        [("bob", 403), ("monica", 403), ("diane", 403), ("charlie", 404), ("rene", 404)],
    )
    def test_others_are_refused(self, client, world, randomised, persona, status):
        client.force_login(getattr(world, persona))
        url = unblind_url(world, world.bxp_patients[0])
        assert client.get(url).status_code == status
        assert client.post(url, {"reason": REASON, "password": PASSWORD}).status_code == status
        assert not Unblinding.objects.exists()

    def test_patient_not_randomised_shows_no_form(self, client, world, randomised):
        client.force_login(world.alice)
        url = unblind_url(world, world.bxp_patients[2])
        assert client.get(url).context["randomised"] is False
        client.post(url, {"reason": REASON, "password": PASSWORD})
        assert not Unblinding.objects.exists()


class TestLockout:
    """The password re-entry is the login's: wrong ones count towards the same lockout."""

    def test_wrong_reentries_are_recorded_and_the_fifth_locks_and_signs_out(
        self, client, world, randomised, django_capture_on_commit_callbacks
    ):
        client.force_login(world.alice)
        url = unblind_url(world, world.bxp_patients[0])
        english = {"accept-language": "en"}
        for _ in range(4):
            response = client.post(url, {"reason": REASON, "password": "nope"}, headers=english)
            assert response.status_code == 200
            assert response.context["form"].errors["password"] == [
                "Password: your password is not correct."
            ]
        with django_capture_on_commit_callbacks(execute=True):
            locked = client.post(url, {"reason": REASON, "password": "nope"}, headers=english)
        assert locked.status_code == 429
        body = locked.content.decode()
        assert "You have been signed out." in body
        assert "This account is locked after 5 wrong passwords in a row." in body
        until = timezone.localtime(locked_until("alice"))
        assert f"Try again after {until:%H:%M}" in body
        assert "_auth_user_id" not in client.session
        assert REASON not in body
        kinds = list(
            AuthEvent.objects.filter(username="alice").order_by("id").values_list("kind", flat=True)
        )
        assert kinds == ["login", *["reauth_failed"] * 5, "lockout", "logout"]
        # The medical reason typed in the form is not kept with the failed attempts.
        assert all(REASON not in a.post_data for a in AccessAttempt.objects.all())
        assert not Unblinding.objects.exists()
        # Locked: the login page refuses the right password too.
        relogin = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
        assert relogin.status_code == 429

    def test_a_locked_account_is_refused_even_the_right_password_and_signed_out(
        self, client, world, randomised
    ):
        """Locked from the login page elsewhere while a session was open here."""
        client.force_login(world.alice)
        other = type(client)()
        for _ in range(5):
            other.post(reverse("login"), {"username": "alice", "password": "guess"})
        response = client.post(
            unblind_url(world, world.bxp_patients[0]), {"reason": REASON, "password": PASSWORD}
        )
        assert response.status_code == 429
        assert "_auth_user_id" not in client.session
        assert not Unblinding.objects.exists()

    def test_the_service_without_a_request_counts_too(self, world, randomised):
        patient = world.bxp_patients[0]
        for _ in range(5):
            with pytest.raises(ValidationError):
                emergency_unblind(patient=patient, by=world.alice, reason=REASON, password="x")
        with pytest.raises(ValidationError, match="your account is locked"):
            emergency_unblind(patient=patient, by=world.alice, reason=REASON, password=PASSWORD)
        assert locked_until("alice") is not None
        assert not Unblinding.objects.exists()

    def test_a_right_reentry_is_recorded(self, world, randomised):
        emergency_unblind(
            patient=world.bxp_patients[0], by=world.alice, reason=REASON, password=PASSWORD
        )
        assert AuthEvent.objects.filter(kind=AuthEvent.Kind.REAUTH, user=world.alice).count() == 1
