"""Demo data: both studies, the demo users of the README, and a few patients.

Idempotent: users and patients that exist are left alone, so `make demo` can be run
again on the same database.
"""

from __future__ import annotations

import os
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from ecrf.accounts.access import Role
from ecrf.accounts.models import Membership
from ecrf.audit.context import audited
from ecrf.patients.models import AllocationList, Patient
from ecrf.patients.randomisation import allocation_list_generate, allocation_take
from ecrf.patients.services import patient_create
from ecrf.studies.models import Site, Study

DEFAULT_PASSWORD = "scleroderma-demo-2026"
RCT, COHORT = "NCT00479934", "NCT04206644"

# username, first name, last name, [(study, site code or None, role)]
USERS = [
    ("investigator.bordeaux", "Hélène", "Martin", [(RCT, "BXP", Role.INVESTIGATOR)]),
    ("coordinator.bordeaux", "Julien", "Petit", [(RCT, "BXP", Role.COORDINATOR)]),
    ("investigator.strasbourg", "Claire", "Muller", [(RCT, "STR", Role.INVESTIGATOR)]),
    ("monitor.bordeaux", "Sophie", "Bernard", [(RCT, "BXP", Role.MONITOR)]),
    (
        "datamanager",
        "Thomas",
        "Dubois",
        [(RCT, None, Role.DATA_MANAGER), (COHORT, None, Role.DATA_MANAGER)],
    ),
    ("admin", "Anne", "Leroy", [(RCT, None, Role.ADMIN), (COHORT, None, Role.ADMIN)]),
    ("investigator.rennes", "Yann", "Le Gall", [(COHORT, "REN", Role.INVESTIGATOR)]),
]

# site code, days since screening, status, group, randomised
PATIENTS = {
    RCT: [
        ("BXP", 200, Patient.Status.ENROLLED, "", True),
        ("BXP", 120, Patient.Status.ENROLLED, "", True),
        ("BXP", 40, Patient.Status.ENROLLED, "", True),
        ("BXP", 10, Patient.Status.SCREENING, "", False),
        ("BXP", 60, Patient.Status.SCREEN_FAILED, "", False),
        ("STR", 150, Patient.Status.ENROLLED, "", True),
        ("STR", 5, Patient.Status.SCREENING, "", False),
    ],
    COHORT: [
        ("REN", 30, Patient.Status.ENROLLED, "SSC", False),
        ("REN", 20, Patient.Status.ENROLLED, "SLE", False),
        ("REN", 15, Patient.Status.ENROLLED, "HD", False),
        ("REN", 2, Patient.Status.SCREENING, "SSC", False),
    ],
}
# Allocation lists of the trial's demo sites: fixed seeds, so every demo has the same arms.
ALLOCATION_LISTS = {"BXP": 20260101, "STR": 20260102}


class Command(BaseCommand):
    help = "Create the demo users and patients (password from DEMO_PASSWORD)."

    def handle(self, *args, **options):
        if Study.objects.filter(code__in=[RCT, COHORT]).count() < 2:
            call_command("load_protocol", all=True)
        password = os.environ.get("DEMO_PASSWORD", DEFAULT_PASSWORD)
        with transaction.atomic(), audited(by=None, reason="demo data: accounts"):
            users = {
                name: self._user(name, first, last, password, roles)
                for name, first, last, roles in USERS
            }
        with transaction.atomic(), audited(by=None, reason="demo data: unblinded administrator"):
            # The admin is the demo's unblinded user: it generates the allocation lists.
            Membership.objects.filter(user=users["admin"], study__code=RCT).update(unblinded=True)
        self._allocation_lists(Study.objects.get(code=RCT), users["admin"])
        with transaction.atomic():
            for study_code, rows in PATIENTS.items():
                self._patients(Study.objects.get(code=study_code), rows, users)
        self.stdout.write(self.style.SUCCESS(f"Demo users ready: {', '.join(users)}"))

    def _user(self, username, first, last, password, roles):
        user, created = get_user_model().objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@example.org"},
        )
        if created:
            user.set_password(password)
            user.is_staff = user.is_superuser = username == "admin"
            user.save()
        for study_code, site_code, role in roles:
            Membership.objects.get_or_create(
                user=user,
                study=Study.objects.get(code=study_code),
                site=Site.objects.get(code=site_code) if site_code else None,
                role=role,
            )
        return user

    def _allocation_lists(self, study, by):
        for site_code, seed in ALLOCATION_LISTS.items():
            site = Site.objects.get(code=site_code)
            if not AllocationList.objects.filter(study=study, site=site).exists():
                allocation_list_generate(
                    study=study, site=site, size=20, seed=seed, by=by, note="demo data"
                )

    def _patients(self, study, rows, users):
        today = timezone.localdate()
        staff = {
            "BXP": users["investigator.bordeaux"],
            "STR": users["investigator.strasbourg"],
            "REN": users["investigator.rennes"],
        }
        for index, (site_code, days_ago, status, group, randomised) in enumerate(rows):
            site = Site.objects.get(code=site_code)
            if Patient.objects.filter(study=study, site=site).count() > sum(
                1 for row in rows[:index] if row[0] == site_code
            ):
                continue
            patient = patient_create(
                study=study,
                site=site,
                by=staff[site_code],
                screening_date=today - timedelta(days=days_ago),
                group=group,
            )
            if status == Patient.Status.SCREENING:
                continue
            with audited(by=staff[site_code], reason=f"demo data: {status}"):
                patient.status = status
                if status == Patient.Status.ENROLLED:
                    patient.day0_date = patient.screening_date + timedelta(
                        days=14 if randomised else 0
                    )
                patient.save()
                if randomised:
                    allocation_take(patient=patient, by=staff[site_code])
