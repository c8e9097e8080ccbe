"""factory_boy factories for every model the tests build directly."""

from __future__ import annotations

import factory
from django.db.models import Max
from django.utils import timezone

from ecrf.accounts.models import Membership, Role, User
from ecrf.patients.models import Allocation, AllocationList, Patient
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
