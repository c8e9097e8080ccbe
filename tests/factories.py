"""factory_boy factories for every model the tests build directly."""

from __future__ import annotations

import functools
from datetime import timedelta

import factory
from django.db.models import Max
from django.utils import timezone

from ecrf.accounts.models import Membership, Role, User
from ecrf.crfs.models import Consent, SafetyLabs
from ecrf.notifications.models import OutboundEmail
from ecrf.patients.form_index import form_index_sync
from ecrf.patients.models import Allocation, AllocationList, Patient, Visit
from ecrf.patients.services import patient_facts_record
from ecrf.safety.models import AdverseEvent, LabAlert
from ecrf.studies.models import StudySite

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name", locale="fr_FR")
    last_name = factory.Faker("last_name", locale="fr_FR")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password(PASSWORD)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    role = Role.INVESTIGATOR


class PatientFactory(factory.django.DjangoModelFactory):
    """Builds a patient with the site's next subject code, as the service would."""

    class Meta:
        model = Patient

    screening_date = factory.LazyFunction(timezone.localdate)
    created_by = factory.SubFactory(UserFactory)
    protocol_version = factory.LazyAttribute(lambda p: p.study.current_protocol)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        study_site = StudySite.objects.get(study=kwargs["study"], site=kwargs["site"])
        study_site.last_subject_number += 1
        study_site.save(update_fields=["last_subject_number"])
        kwargs.setdefault(
            "subject_code", f"{kwargs['site'].code}-{study_site.last_subject_number:03d}"
        )
        return super()._create(model_class, *args, **kwargs)


class AllocationListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AllocationList

    source = AllocationList.Source.IMPORTED
    created_by = factory.SubFactory(UserFactory)


class AllocationFactory(factory.django.DjangoModelFactory):
    """A slot of a site's list; taken by `patient` when one is given (as allocation_take does)."""

    class Meta:
        model = Allocation

    patient = None
    study = factory.LazyAttribute(lambda a: a.patient.study)
    site = factory.LazyAttribute(lambda a: a.patient.site)
    allocation_list = factory.SubFactory(
        AllocationListFactory,
        study=factory.SelfAttribute("..study"),
        site=factory.SelfAttribute("..site"),
    )
    sequence = factory.LazyAttribute(
        lambda a: (
            (
                Allocation.objects.filter(study=a.study, site=a.site).aggregate(n=Max("sequence"))[
                    "n"
                ]
                or 0
            )
            + 1
        )
    )
    block_number = factory.SelfAttribute("sequence")
    block_size = 1
    arm = "IMA"
    kit_number = factory.Sequence(lambda n: f"K-{9000 + n}")
    allocated_by = factory.Maybe("patient", factory.SubFactory(UserFactory), None)
    allocated_at = factory.Maybe("patient", factory.LazyFunction(timezone.now), None)


class VisitFactory(factory.django.DjangoModelFactory):
    """A visit of `patient` (required) under the patient's protocol version, M0 by default,
    written as a row: no window, no schedule rule (the visit services do those)."""

    class Meta:
        model = Visit

    code = "M0"
    sequence = 1
    protocol_version = factory.SelfAttribute("patient.protocol_version")


class CrfFactory(factory.django.DjangoModelFactory):
    """A row of a case report form at `visit` (required), for the visit's patient and
    protocol version, written as a row (not through crf_save): `crf_factory(Model)`.

    What crf_save keeps beside the row is kept too, so the data stay consistent: the form
    index entry and the facts the form establishes about the patient (consent date,
    conditions)."""

    class Meta:
        abstract = True

    patient = factory.SelfAttribute("visit.patient")
    protocol_version = factory.SelfAttribute("visit.protocol_version")
    entered_by = factory.SubFactory(UserFactory)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        instance = super()._create(model_class, *args, **kwargs)
        form_index_sync(instance)
        patient_facts_record(patient=instance.patient, facts=instance.patient_facts())
        return instance


@functools.cache
def crf_factory(model) -> type[CrfFactory]:
    """The factory of any case report form model, e.g. `crf_factory(Mrss)(visit=v, face=1)`."""
    return factory.make_factory(model, FACTORY_CLASS=CrfFactory)


class ConsentFactory(CrfFactory):
    """A signed consent, dated on its visit (or today when the visit has no date yet)."""

    class Meta:
        model = Consent

    consent_date = factory.LazyAttribute(lambda c: c.visit.visit_date or timezone.localdate())
    consent_version = "1.0"
    signed_by_investigator = True


class SafetyLabsFactory(CrfFactory):
    class Meta:
        model = SafetyLabs


class LabAlertFactory(factory.django.DjangoModelFactory):
    """An open safety-lab prompt on `labs` (required): platelets under the alert limit."""

    class Meta:
        model = LabAlert

    patient = factory.SelfAttribute("labs.patient")
    visit = factory.SelfAttribute("labs.visit")
    analyte = "platelets_x10e9_l"
    value = 40
    limit = "< 50"


class AdverseEventFactory(factory.django.DjangoModelFactory):
    """A non-serious adverse event of `patient` (required), numbered after the patient's
    others, written as a row: the rules of ae_create are not applied (the database's are)."""

    class Meta:
        model = AdverseEvent

    number = factory.LazyAttribute(
        lambda e: (
            (AdverseEvent.objects.filter(patient=e.patient).aggregate(n=Max("number"))["n"] or 0)
            + 1
        )
    )
    protocol_version = factory.SelfAttribute("patient.protocol_version")
    created_by = factory.SubFactory(UserFactory)
    term = "Nausea"
    onset_date = factory.LazyFunction(
        lambda: (timezone.localdate() - timedelta(days=3)).isoformat()
    )
    ongoing = True
    ctcae_grade = 2
    relatedness = "possible"
    expected = True
    action_taken = "none"
    outcome = "recovering"
    aware_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=2))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        instance = super()._create(model_class, *args, **kwargs)
        form_index_sync(instance)  # as the AE services do
        return instance


class OutboundEmailFactory(factory.django.DjangoModelFactory):
    """An email waiting to be sent."""

    class Meta:
        model = OutboundEmail

    dedupe_key = factory.Sequence(lambda n: f"email-{n}")
    kind = "t"
    recipients = factory.LazyFunction(lambda: ["a@example.org"])
    subject = "S"
    body = "B"
