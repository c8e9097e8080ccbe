"""Demo data: both studies, the demo users of the README, and patients at every stage.

Every patient is written through the services a site would use (screening, visit dates,
case report forms, enrolment and randomisation, missed visits, deviations, end of study),
so the demo's visits, derived scores and audit trail are what real use produces. Dates
count back from today: the visits done are in the past, the later ones are planned, one
is overdue and one falls due within the fortnight.

Then a week of visit reminders, as beat's sweep would have left them: the sweep runs at
the sending hour (08:00 at the site) of each of the last seven days and of today once
that hour has passed; the earlier days' emails are sent at once (the file backend writes
them to ./var/mail), today's wait in the outbox, pending in the reminders log until the
worker sends them as the demo starts. The Bordeaux investigator reads hers as a daily
digest; the Bordeaux coordinator reads English.

Idempotent: users, memberships, allocation lists and reminder settings that exist are
left alone, a patient row is skipped when its site already has that many patients, and
a reminder is recorded once (its unique key), so `make demo` can run again on the same
database. Each patient is one transaction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from ecrf.accounts.access import Role
from ecrf.accounts.models import Language, Membership
from ecrf.audit.context import audited
from ecrf.crfs.enrolment import patient_enrol, patient_screen_fail
from ecrf.crfs.models import SafetyLabs
from ecrf.crfs.services import crf_save, visit_forms
from ecrf.demo.review import seed_review
from ecrf.notifications.models import OutboundEmail
from ecrf.notifications.tasks import send_emails
from ecrf.patients.models import Allocation, AllocationList, Patient, Visit
from ecrf.patients.randomisation import allocation_list_generate
from ecrf.patients.services import patient_create, patient_end, patient_plan_inclusion
from ecrf.patients.visits import visit_add_unscheduled, visit_mark_missed, visit_record_date
from ecrf.reminders.models import Delivery, Reminder, ReminderPreference
from ecrf.reminders.rules import send_instant
from ecrf.reminders.services import reminder_settings_save, reminders_sweep
from ecrf.safety.clock import local_instant
from ecrf.safety.models import LabAlert
from ecrf.safety.services import (
    ae_authority_reported,
    ae_create,
    ae_update,
    sae_acknowledge,
    sae_follow_up,
    sae_submit_initial,
)
from ecrf.scoring import haq as haq_scoring
from ecrf.scoring import mrss as mrss_scoring
from ecrf.scoring import sle2019, ssc2013
from ecrf.studies.models import ProtocolVersion, Site, Study

DEFAULT_PASSWORD = "scleroderma-demo-2026"  # nosec B105  # the demo's documented password
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

# The demo's settings beside the defaults (French, one email per reminder), set when the
# account or the setting is first created.
LANGUAGES = {"coordinator.bordeaux": Language.ENGLISH}
DIGESTS = [("investigator.bordeaux", RCT)]
# How many days of reminders the demo starts with, before today.
REMINDER_DAYS = 7

# Allocation lists of the trial's demo sites: fixed seeds, so every demo has the same arms.
ALLOCATION_LISTS = {"BXP": 20260101, "STR": 20260102}
ALLOCATION_LIST_SIZE = 20
INVESTIGATORS = {
    "BXP": "investigator.bordeaux",
    "STR": "investigator.strasbourg",
    "REN": "investigator.rennes",
}

# (study, site, group, scenario method): subject codes follow this order, site by site.
PATIENTS = [
    (RCT, "BXP", "", "_bxp_completed"),
    (RCT, "BXP", "", "_bxp_at_m6"),
    (RCT, "BXP", "", "_bxp_missed_m1_late_m3"),
    (RCT, "BXP", "", "_bxp_m1_overdue"),
    (RCT, "BXP", "", "_bxp_in_screening"),
    (RCT, "BXP", "", "_bxp_screen_failure"),
    (RCT, "STR", "", "_str_at_m3"),
    (RCT, "STR", "", "_str_in_screening"),
    (COHORT, "REN", "SSC", "_ren_ssc_lab_complete"),
    (COHORT, "REN", "SLE", "_ren_sle_lab_in_progress"),
    (COHORT, "REN", "HD", "_ren_hd_with_ssc_serum"),
    (COHORT, "REN", "SSC", "_ren_ssc_in_screening"),
]

# -- plausible values -------------------------------------------------------------------------

# mRSS areas from the most to the least often thickened, with the highest score each reaches
# in these patients: diffuse disease is worst on the fingers, hands and forearms.
MRSS_PROFILE = {
    "fingers_r": 3, "fingers_l": 3, "hand_r": 3, "hand_l": 3, "forearm_r": 3, "forearm_l": 3,
    "face": 2, "upper_arm_r": 2, "upper_arm_l": 2, "foot_r": 2, "foot_l": 2,
    "lower_leg_r": 2, "lower_leg_l": 2, "anterior_chest": 2, "thigh_r": 1, "thigh_l": 1,
    "abdomen": 1,
}  # fmt: skip
assert set(MRSS_PROFILE) == set(mrss_scoring.AREAS)  # nosec B101  # a table check at import

# DLQI questions from the most to the least affected in scleroderma, with their highest score
# here (q7 is answered through 7b, "a lot" at most).
DLQI_PROFILE = {
    "q1": 3, "q2": 3, "q4": 3, "q3": 3, "q5": 3, "q6": 3, "q10": 3, "q8": 3, "q7": 2, "q9": 3,
}  # fmt: skip
DLQI_ANSWERS = {0: "not_at_all", 1: "a_little", 2: "a_lot", 3: "very_much"}

# Safety laboratory results within normal limits, with the sites' upper normal limits.
NORMAL_LABS = {
    "hemoglobin_g_dl": "13.2",
    "neutrophils_x10e9_l": "4.10",
    "platelets_x10e9_l": "262",
    "bilirubin_umol_l": "9.0",
    "ast_u_l": "24",
    "alt_u_l": "27",
    "creatinine_umol_l": "71",
}
ULN = {"bilirubin_umol_l": "17", "ast_u_l": "40", "alt_u_l": "45", "creatinine_umol_l": "90"}

MEDICAL_HISTORY_NONE = dict.fromkeys(
    (
        "en_coup_de_sabre",
        "ongoing_cancer",
        "uncontrolled_diabetes",
        "chronic_kidney_failure",
        "chronic_hepatitis",
        "hiv_infection",
    ),
    False,
)

# Imatinib 400 mg/day: four 100 mg capsules a day, one kit for the six months of treatment.
KIT_UNITS, UNITS_PER_DAY = 800, 4
RUXOLITINIB_NM = Decimal("1000")
# An adverse event's answers when a scenario does not say otherwise: mild, not serious.
AE_DEFAULTS = {
    "meddra_llt_code": "",
    "meddra_pt_code": "",
    "end_date": None,
    "ongoing": True,
    "ctcae_grade": 1,
    "serious": False,
    "sae_death": False,
    "sae_life_threatening": False,
    "sae_hospitalisation": False,
    "sae_disability": False,
    "sae_congenital_anomaly": False,
    "sae_important_medical_event": False,
    "relatedness": "unlikely",
    "expected": True,
    "action_taken": "none",
    "outcome": "recovering",
    "death_date": None,
}


def mrss_areas(total: int) -> dict[str, int]:
    """Area scores summing to `total`: each level is reached area by area, worst areas first."""
    scores = dict.fromkeys(MRSS_PROFILE, 0)
    remaining = total
    for level in (1, 2, 3):
        for area, highest in MRSS_PROFILE.items():
            if remaining and highest >= level:
                scores[area] = level
                remaining -= 1
    if remaining:
        raise ValueError(f"an mRSS of {total} is beyond the demo profile")
    return scores


def mrss(day: date, total: int, assessor: str) -> dict:
    return {"exam_date": day, "assessor": assessor, **mrss_areas(total)}


def dlqi(total: int) -> dict:
    """DLQI answers scoring `total`, the most affected questions first."""
    scores = dict.fromkeys(DLQI_PROFILE, 0)
    remaining = total
    for level in (1, 2, 3):
        for question, highest in DLQI_PROFILE.items():
            if remaining and highest >= level:
                scores[question] = level
                remaining -= 1
    if remaining:
        raise ValueError(f"a DLQI of {total} is beyond the demo profile")
    answers = {q: DLQI_ANSWERS[s] for q, s in scores.items() if q != "q7"}
    return {**answers, "q7a": "no", "q7b": DLQI_ANSWERS[scores["q7"]]}


def haq(categories: tuple[int, ...], vas: tuple[int, ...]) -> dict:
    """HAQ items from each category's score (its worst item) and the seven VAS, in mm."""
    values = {}
    for score, items in zip(categories, haq_scoring.CATEGORIES.values(), strict=True):
        # The first item of a category is the hardest; the others one step easier.
        for index, item in enumerate(items):
            values[item] = score if index == 0 else max(score - 1, 0)
    return {**values, **dict(zip(haq_scoring.VAS_SCALES, vas, strict=True))}


def labs(day: date, **values: str) -> dict:
    results = {name: Decimal(value) for name, value in {**NORMAL_LABS, **values}.items()}
    return {
        "sample_date": day,
        **results,
        **{f"{name}_uln": Decimal(uln) for name, uln in ULN.items()},
    }


def findings(keys, *present: str) -> dict[str, bool]:
    """Every finding of a classification answered: those named present, the others absent."""
    unknown = set(present) - set(keys)
    if unknown:
        raise ValueError(f"unknown findings {sorted(unknown)}")
    return {key: key in present for key in keys}


@dataclass(frozen=True)
class Assessment:
    """What one follow-up visit of the trial found, `day` days after inclusion."""

    code: str
    day: int
    mrss: int
    dlqi: int
    haq: tuple[int, ...]  # category scores: dressing, arising, eating, walking, hygiene...
    vas: tuple[int, ...]  # pain, global, Raynaud, ulcers, GI, breathing, severity (mm)
    returned: int | None = None  # units brought back at the drug count
    dermal_um: int | None = None  # skin biopsy: dermal thickness
    labs: dict = field(default_factory=dict)  # results that differ from NORMAL_LABS


@dataclass(frozen=True)
class Culture:
    """One culture condition of the Sclero-JAK laboratory visit: ELISA and flow cytometry."""

    condition: str
    cytokines: dict  # cytokine -> pg/mL, or None when under the limit of detection
    flow: dict  # marker -> (% positive, MFI)


CYTOKINE_LOD = {"ccl18": "15.6", "pdgfbb": "7.8", "il6": "9.4", "cxcl10": "7.8", "cxcl4": "31.2"}

SSC_CULTURES = (
    Culture(
        "untreated",
        {"ccl18": "48500", "pdgfbb": "312", "il6": "186", "cxcl10": "1240", "cxcl4": "2860"},
        {"cd204": ("78.5", "5120"), "cd206": ("71.2", "8340"), "cd163": ("64.8", "4210"),
         "cd86": ("42.1", "1830"), "hla_dr": ("88.3", "12650"), "tlr4": ("35.6", "960")},
    ),
    Culture(
        "ruxolitinib",
        {"ccl18": "21300", "pdgfbb": "154", "il6": None, "cxcl10": "212", "cxcl4": "1190"},
        {"cd204": ("61.0", "3480"), "cd206": ("48.7", "5010"), "cd163": ("45.2", "2760"),
         "cd86": ("39.8", "1710"), "hla_dr": ("84.9", "11020"), "tlr4": ("28.3", "790")},
    ),
)  # fmt: skip
SLE_CULTURE = Culture(
    "untreated",
    {"ccl18": "30100", "pdgfbb": "205", "il6": "142", "cxcl10": "2650", "cxcl4": "1480"},
    {},
)
HD_CULTURES = (
    Culture(
        "hd_serum_untreated",
        {"ccl18": "26400", "pdgfbb": "188", "il6": "97", "cxcl10": "640", "cxcl4": "1620"},
        {"cd204": ("66.3", "4020"), "cd206": ("58.9", "6230"), "cd163": ("52.4", "3390"),
         "cd86": ("36.7", "1540"), "hla_dr": ("86.1", "11870"), "tlr4": ("30.2", "840")},
    ),
    Culture(
        "hd_serum_ruxolitinib",
        {"ccl18": "14800", "pdgfbb": "121", "il6": None, "cxcl10": "158", "cxcl4": "930"},
        {"cd204": ("55.7", "3110"), "cd206": ("44.1", "4480"), "cd163": ("40.6", "2350"),
         "cd86": ("35.9", "1490"), "hla_dr": ("83.4", "10480"), "tlr4": ("26.8", "720")},
    ),
)  # fmt: skip


def cytokines(culture: Culture, serum_donor: Patient | None) -> dict:
    values = {"condition": culture.condition, "serum_donor": serum_donor}
    if "ruxolitinib" in culture.condition:
        values["ruxolitinib_nm"] = RUXOLITINIB_NM
    for name, value in culture.cytokines.items():
        if value is None:
            values |= {f"{name}_below_lod": True, f"{name}_lod_pg_ml": Decimal(CYTOKINE_LOD[name])}
        else:
            values[f"{name}_pg_ml"] = Decimal(value)
    return values


def flow(culture: Culture, serum_donor: Patient | None) -> dict:
    values = {"condition": culture.condition, "serum_donor": serum_donor}
    for marker, (pct, mfi) in culture.flow.items():
        values |= {f"{marker}_pos_pct": Decimal(pct), f"{marker}_mfi": Decimal(mfi)}
    return values


# -- one patient's record ---------------------------------------------------------------------


class Chart:
    """One patient's record, written through the services as the site staff would."""

    def __init__(self, patient: Patient, by, *, assistant=None, assessor: str = ""):
        self.patient = patient
        self.by = by  # the investigator: visits, consent, clinical examination
        self.assistant = assistant or by  # questionnaires, laboratory, drug forms
        self.assessor = assessor

    def visit(self, code: str) -> Visit:
        return self.patient.visits.get(code=code, repeat=1)

    def forms(self, code: str) -> set[str]:
        return set(visit_forms(self.visit(code)))

    def date(self, code: str, day: date, **deviation) -> None:
        visit_record_date(visit=self.visit(code), by=self.by, visit_date=day, **deviation)

    def save(self, code: str, form_code: str, values: dict, *, by=None):
        return crf_save(
            visit=self.visit(code),
            form_code=form_code,
            values=values,
            by=by or self.by,
            expected_version=0,
        )

    def correct(self, instance, values: dict, *, reason: str, by=None):
        return crf_save(
            visit=instance.visit,
            form_code=instance.FORM_CODE,
            values=values,
            by=by or self.by,
            expected_version=instance.version,
            reason=reason,
        )

    def consent(self, code: str, day: date, version: str) -> None:
        self.save(
            code,
            "consent",
            {"consent_date": day, "consent_version": version, "signed_by_investigator": True},
        )

    def eligibility(self, code: str, **answers: bool) -> None:
        """The checklist: every line answered the eligible way unless given here."""
        protocol = self.patient.protocol_version.protocol
        criteria = protocol.eligibility_for(self.patient.group or None)
        checklist = {c.id: c.kind == "inclusion" for c in criteria} | answers
        self.save(code, "eligibility", {"answers": checklist})

    def kit(self) -> str:
        return Allocation.objects.get(patient=self.patient).kit_number

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        """A wall-clock time at the patient's site, as the UTC instant stored."""
        return local_instant(day, time(hour, minute), self.patient.site.timezone)

    def adverse_event(
        self, term: str, *, onset: date | str, aware: datetime, lab_alert=None, **answers
    ):
        """`onset` a date, or "YYYY-MM" when the patient does not remember the day."""
        onset = onset if isinstance(onset, str) else onset.isoformat()
        values = {**AE_DEFAULTS, **answers, "term": term, "onset_date": onset}
        return ae_create(
            patient=self.patient,
            by=self.by,
            values={**values, "aware_at": aware},
            lab_alert=lab_alert,
        )

    def follow_up(self, day0: date, a: Assessment) -> None:
        """A dated trial visit with the forms the protocol asks of it."""
        day = day0 + timedelta(days=a.day)
        forms = self.forms(a.code)
        self.save(a.code, "mrss", mrss(day, a.mrss, self.assessor))
        if "skin_biopsy" in forms:
            self.save(
                a.code,
                "skin_biopsy",
                {
                    "biopsy_date": day,
                    "body_site": "left forearm",
                    "dermal_thickness_um": a.dermal_um,
                },
            )
        if "dlqi" in forms:
            self.save(a.code, "dlqi", dlqi(a.dlqi), by=self.assistant)
        if "haq" in forms:
            self.save(a.code, "haq", haq(a.haq, a.vas), by=self.assistant)
        if "safety_labs" in forms:
            self.save(a.code, "safety_labs", labs(day, **a.labs), by=self.assistant)
        if "drug_dispensing" in forms:
            self.save(
                a.code,
                "drug_dispensing",
                {
                    "kit_number": self.kit(),
                    "dispensing_date": day,
                    "units_dispensed": KIT_UNITS,
                    "expected_units_per_day": UNITS_PER_DAY,
                },
                by=self.assistant,
            )
        if "drug_accountability" in forms:
            self.save(
                a.code,
                "drug_accountability",
                {
                    "kit_number": self.kit(),
                    "accountability_date": day,
                    "units_dispensed": KIT_UNITS,
                    "units_returned": a.returned,
                },
                by=self.assistant,
            )


# -- the command ------------------------------------------------------------------------------


class Command(BaseCommand):
    help = "Create the demo users and patients (password from DEMO_PASSWORD)."

    def handle(self, *args, **options):
        if Study.objects.filter(code__in=[RCT, COHORT]).count() < 2:
            call_command("load_protocol", all=True)
        # Hashed once for all the accounts: the hasher is slow by design (~0.15 s a hash).
        # Kept in clear for this run only: submitting an SAE report asks for the password.
        self.password = os.environ.get("DEMO_PASSWORD", DEFAULT_PASSWORD)
        password = make_password(self.password)
        with transaction.atomic(), audited(by=None, reason="demo data: accounts"):
            self.users = {
                name: self._user(name, first, last, password, roles)
                for name, first, last, roles in USERS
            }
        with transaction.atomic(), audited(by=None, reason="demo data: unblinded administrator"):
            # The admin is the demo's unblinded user: it generates the allocation lists.
            Membership.objects.filter(
                user=self.users["admin"], study__code=RCT, unblinded=False
            ).update(unblinded=True)
        self._allocation_lists(Study.objects.get(code=RCT), self.users["admin"])

        self.today = timezone.localdate()
        studies = {code: Study.objects.get(code=code) for code in (RCT, COHORT)}
        sites = {code: Site.objects.get(code=code) for code in ("BXP", "STR", "REN")}
        created = []
        for index, (study_code, site_code, group, scenario) in enumerate(PATIENTS):
            study, site = studies[study_code], sites[site_code]
            rank = sum(1 for row in PATIENTS[: index + 1] if row[:2] == (study_code, site_code))
            if Patient.objects.filter(study=study, site=site).count() >= rank:
                continue
            with transaction.atomic():
                patient = getattr(self, scenario)(study, site, group)
            patient.refresh_from_db()
            created.append(patient)
            self.stdout.write(f"  {patient.subject_code} ({study.code}): {self._stage(patient)}")
        # The review before the reminders: its open queries remind the site too.
        self.stdout.write(f"  {seed_review(self.users, self.password)}")
        self._reminder_settings(studies)
        self._reminders()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo users ready: {', '.join(self.users)}; {len(created)} patient(s) created."
            )
        )

    # -- accounts and allocation lists ----------------------------------------------------------

    def _user(self, username, first, last, password, roles):
        user, created = get_user_model().objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@example.org",
                "language": LANGUAGES.get(username, Language.FRENCH),
            },
        )
        if created:
            user.password = password
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
                    study=study,
                    site=site,
                    size=ALLOCATION_LIST_SIZE,
                    seed=seed,
                    by=by,
                    note="demo data",
                )

    # -- reminders ------------------------------------------------------------------------------

    def _reminder_settings(self, studies) -> None:
        """The demo's digest readers, through the service a person uses on their settings
        page; a setting already stored (the person's own choice since) is left alone."""
        for username, study_code in DIGESTS:
            user, study = self.users[username], studies[study_code]
            if not ReminderPreference.objects.filter(user=user, study=study).exists():
                reminder_settings_save(
                    user=user, study=study, delivery=Delivery.DIGEST, visit_reminders=True
                )

    def _sending_instants(self) -> list[datetime]:
        """The sending hour of each of the last REMINDER_DAYS days and of today, at every
        site's time zone and protocol's hour, that has passed."""
        now = timezone.now()
        hours = {
            version.protocol.reminders.send_time
            for version in ProtocolVersion.objects.filter(study__code__in=[RCT, COHORT])
        }
        zones = set(Patient.objects.values_list("site__timezone", flat=True))
        days = [self._days_ago(n) for n in range(REMINDER_DAYS, -1, -1)]
        instants = {send_instant(d, hour, zone) for d in days for hour in hours for zone in zones}
        return sorted(instant for instant in instants if instant <= now)

    def _reminders(self) -> None:
        """Sweep each sending hour in turn, as beat would have; send the emails of the days
        before today synchronously (the file backend writes them to ./var/mail), dated as
        sent at their hour, and leave today's in the outbox for the worker."""
        started = timezone.now()
        recorded = sent = 0
        for instant in self._sending_instants():
            recorded += reminders_sweep(at=instant).recorded
            if timezone.localdate(instant) == self.today:
                continue  # today's: for the worker
            # This run's emails of the reminders due by then (none twice: once sent, they
            # are dated at their hour, before this run started).
            emails = OutboundEmail.objects.filter(
                pk__in=Reminder.objects.filter(
                    due_at__lte=instant, email__created_at__gte=started
                ).values("email_id")
            )
            waiting = list(
                emails.filter(status=OutboundEmail.Status.PENDING).values_list("pk", flat=True)
            )
            if waiting:
                send_emails(waiting)  # here, not through the broker
            sent += emails.filter(status=OutboundEmail.Status.SENT).update(
                created_at=instant, claimed_at=instant, sent_at=instant
            )
        pending = Reminder.objects.filter(
            status=Reminder.Status.QUEUED, email__status=OutboundEmail.Status.PENDING
        ).count()
        self.stdout.write(
            f"  reminders: {recorded} recorded, {sent} email(s) sent, "
            f"{pending} reminder(s) waiting in the outbox"
        )

    def _stage(self, patient: Patient) -> str:
        visits = {v.code: v.status for v in patient.visits.order_by("sequence", "repeat")}
        return f"{patient.status}; " + ", ".join(
            f"{code} {status}" for code, status in visits.items()
        )

    def _days_ago(self, days: int) -> date:
        return self.today - timedelta(days=days)

    # -- NCT00479934 ----------------------------------------------------------------------------

    def _chart(self, patient: Patient) -> Chart:
        """Bordeaux: the investigator examines, the coordinator enters questionnaires,
        laboratory results and drug forms; Strasbourg: the investigator does it all."""
        if patient.site.code == "BXP":
            return Chart(
                patient,
                self.users["investigator.bordeaux"],
                assistant=self.users["coordinator.bordeaux"],
                assessor="Dr H. Martin",
            )
        return Chart(patient, self.users["investigator.strasbourg"], assessor="Dr C. Muller")

    def _screen_rct(self, study, site, scr: date, demographics: dict) -> Chart:
        """Screening: the patient screened, the pre-inclusion visit dated, consent, demographics."""
        by = self.users[INVESTIGATORS[site.code]]
        chart = self._chart(patient_create(study=study, site=site, by=by, screening_date=scr))
        chart.date("SCR", scr)
        chart.consent("SCR", scr, "v2.1")
        chart.save("SCR", "demographics", demographics)
        return chart

    def _pre_inclusion(
        self,
        chart: Chart,
        scr: date,
        *,
        diagnosis_year: int,
        mrss_total: int,
        lvef: int,
        pregnancy_test: date | None = None,
        **answers: bool,
    ) -> None:
        """The rest of the pre-inclusion visit, and the eligibility checklist."""
        chart.save(
            "SCR",
            "medical_history",
            {"ssc_type": "systemic", "diagnosis_year": diagnosis_year, **MEDICAL_HISTORY_NONE},
        )
        chart.save("SCR", "mrss", mrss(scr, mrss_total, chart.assessor))
        chart.save("SCR", "echocardiography", {"exam_date": scr, "lvef_pct": lvef})
        chart.save("SCR", "safety_labs", labs(scr), by=chart.assistant)
        if pregnancy_test is not None:
            chart.save(
                "SCR",
                "pregnancy_test",
                {"test_date": pregnancy_test, "test_type": "urine", "result": "negative"},
                by=chart.assistant,
            )
        chart.eligibility("SCR", **answers)

    def _enrolled(self, study, site, *, day0, scr_before, demographics, **history) -> Chart:
        """Screened `scr_before` days before inclusion, eligible, enrolled and randomised."""
        scr = day0 - timedelta(days=scr_before)
        chart = self._screen_rct(study, site, scr, demographics)
        pregnancy = day0 - timedelta(days=4) if demographics.get("childbearing_potential") else None
        self._pre_inclusion(chart, scr, pregnancy_test=pregnancy, **history)
        chart.patient = patient_enrol(patient=chart.patient, by=chart.by, day0_date=day0)
        return chart

    def _follow(self, chart: Chart, day0: date, assessments) -> None:
        for a in assessments:
            if a.code != "M0":  # enrolment dated the inclusion visit
                chart.date(a.code, day0 + timedelta(days=a.day))
            chart.follow_up(day0, a)

    def _bxp_completed(self, study, site, group):
        """Screening to M12, skin softening from 31 to 14, then the end of study."""
        day0 = self._days_ago(380)
        chart = self._enrolled(
            study, site, day0=day0, scr_before=14,
            demographics={"birth_year": 1966, "birth_month": 3, "sex": "F",
                          "childbearing_potential": False},
            diagnosis_year=2024, mrss_total=31, lvef=62,
        )  # fmt: skip
        self._follow(
            chart,
            day0,
            (
                Assessment("M0", 0, 30, 12, (1, 1, 1, 1, 1, 1, 2, 1), (45, 50, 60, 20, 30, 15, 55),
                           dermal_um=2450),
                Assessment("M1", 29, 28, 11, (1, 1, 1, 1, 1, 1, 2, 1), (40, 45, 55, 20, 30, 15, 50),
                           returned=688),
                Assessment("M3", 92, 24, 9, (1, 1, 1, 0, 1, 1, 2, 1), (35, 40, 50, 10, 25, 15, 45),
                           returned=450, labs={"hemoglobin_g_dl": "1.2"}),
                Assessment("M6", 183, 19, 6, (1, 0, 1, 0, 1, 1, 1, 1), (25, 30, 40, 0, 20, 10, 35),
                           returned=98, dermal_um=2080, labs={"neutrophils_x10e9_l": "3.20"}),
                Assessment("M12", 365, 14, 4, (1, 0, 0, 0, 1, 0, 1, 0),
                           (20, 20, 35, 0, 15, 10, 25)),
            ),
        )  # fmt: skip
        # A typing slip at M3, corrected with its reason: the audit trail keeps both.
        chart.correct(
            SafetyLabs.objects.get(visit=chart.visit("M3")),
            {"hemoglobin_g_dl": Decimal("12.1")},
            reason="Transcription error: 12.1 g/dL on the laboratory report",
            by=chart.assistant,
        )
        return patient_end(
            patient=chart.patient,
            by=chart.by,
            status=Patient.Status.COMPLETED,
            end_date=day0 + timedelta(days=365),
            reason="Month 12 follow-up visit done: end of study per protocol",
        )

    def _bxp_at_m6(self, study, site, group):
        """At M6 (end of treatment), M12 months away; a raised ALT recorded as an AE, rechecked."""
        day0 = self._days_ago(200)
        chart = self._enrolled(
            study, site, day0=day0, scr_before=12,
            demographics={"birth_year": 1989, "birth_month": 7, "sex": "F",
                          "childbearing_potential": True},
            diagnosis_year=2025, mrss_total=27, lvef=64,
        )  # fmt: skip
        self._follow(
            chart,
            day0,
            (
                Assessment("M0", 0, 26, 9, (1, 0, 1, 0, 1, 1, 2, 1), (40, 45, 70, 35, 20, 10, 50),
                           dermal_um=2210),
                Assessment("M1", 30, 25, 9, (1, 0, 1, 0, 1, 1, 2, 1), (35, 45, 65, 30, 35, 10, 45),
                           returned=683, labs={"alt_u_l": "72", "ast_u_l": "44"}),
            ),
        )  # fmt: skip
        recheck = day0 + timedelta(days=44)
        # ALT at 1.6 x ULN prompts the investigator, who records it as an adverse event.
        chart.adverse_event(
            "ALT increased",
            onset=day0 + timedelta(days=30),
            aware=chart.at(day0 + timedelta(days=30), 16, 20),
            lab_alert=LabAlert.objects.get(patient=chart.patient, analyte="alt_u_l"),
            meddra_pt_code="10001551",
            relatedness="possible",
            ongoing=False,
            end_date=recheck,
            outcome="recovered",
        )
        # Told at M1, in the patient's words, of nausea "in the first weeks": no day known.
        chart.adverse_event(
            "Nausées après les prises, sensation de réplétion gastrique",
            onset=f"{day0 + timedelta(days=10):%Y-%m}",
            aware=chart.at(day0 + timedelta(days=30), 16, 40),
            meddra_pt_code="10028813",
            relatedness="probable",
            expected=True,
        )
        visit_add_unscheduled(patient=chart.patient, by=chart.by)
        chart.date("UNS", recheck)
        chart.save(
            "UNS", "safety_labs", labs(recheck, alt_u_l="38", ast_u_l="31"), by=chart.assistant
        )
        chart.save("UNS", "mrss", mrss(recheck, 25, chart.assessor))
        self._follow(
            chart,
            day0,
            (
                Assessment("M3", 93, 22, 7, (1, 0, 1, 0, 0, 1, 1, 1), (30, 35, 55, 20, 30, 10, 40),
                           returned=436),
                Assessment("M6", 182, 20, 6, (1, 0, 0, 0, 0, 1, 1, 1), (25, 30, 45, 10, 25, 5, 35),
                           returned=91, dermal_um=1960),
            ),
        )  # fmt: skip
        return chart.patient

    def _bxp_missed_m1_late_m3(self, study, site, group):
        """M1 missed (in hospital for a pneumonia: a SUSAR, reported on time, followed up),
        M3 a week late with its deviation, M6 due soon (its window opens in four days: the
        week's notice went the day BXP-004's first overdue reminder did)."""
        day0 = self._days_ago(164)
        chart = self._enrolled(
            study, site, day0=day0, scr_before=20,
            demographics={"birth_year": 1958, "birth_month": 11, "sex": "M"},
            diagnosis_year=2023, mrss_total=34, lvef=57,
        )  # fmt: skip
        self._follow(
            chart,
            day0,
            (
                Assessment("M0", 0, 33, 14, (2, 1, 1, 1, 1, 2, 2, 1), (55, 60, 65, 40, 35, 30, 65),
                           dermal_um=2630),
            ),
        )  # fmt: skip
        visit_mark_missed(
            visit=chart.visit("M1"),
            by=chart.by,
            reason="Patient hospitalised for pneumonia in another hospital during the M1 window",
        )
        self._pneumonia_susar(chart, day0)
        late = day0 + timedelta(days=112)
        chart.date(
            "M3",
            late,
            deviation_category="out_of_window",
            deviation_reason="Patient abroad on a family visit during the window; seen on return",
        )
        chart.follow_up(
            day0,
            Assessment("M3", 112, 29, 11, (2, 1, 1, 1, 1, 1, 2, 1), (45, 50, 60, 30, 30, 25, 55),
                       returned=388, labs={"creatinine_umol_l": "84"}),
        )  # fmt: skip
        return chart.patient

    def _pneumonia_susar(self, chart: Chart, day0: date) -> None:
        """Serious, possibly related and unexpected: a SUSAR. The report went within the
        day, the sponsor acknowledged it (its 15-day clock) and reported it in time; a
        follow-up gave the recovery."""
        aware = chart.at(day0 + timedelta(days=25), 8, 40)
        event = chart.adverse_event(
            "Pneumonia",
            onset=day0 + timedelta(days=24),
            aware=aware,
            meddra_pt_code="10035664",
            ctcae_grade=3,
            serious=True,
            sae_hospitalisation=True,
            relatedness="possible",
            expected=False,
            action_taken="interrupted",
        )
        sponsor = self.users["datamanager"]
        report = sae_submit_initial(
            report=event.sae_reports.get(number=0),
            by=chart.by,
            password=self.password,
            narrative="Fever and cough from day 24; lobar pneumonia on X-ray; admitted to the "
            "infectious diseases ward of the patient's local hospital. Study drug interrupted.",
            now=aware + timedelta(hours=5, minutes=25),
        )
        sae_acknowledge(report=report, by=sponsor, now=aware + timedelta(hours=8))
        discharged = day0 + timedelta(days=38)
        event = ae_update(
            event=event,
            by=chart.by,
            values={
                **{name: getattr(event, name) for name in AE_DEFAULTS},
                "term": event.term,
                "onset_date": event.onset_date,
                "aware_at": event.aware_at,
                "ongoing": False,
                "end_date": discharged,
                "outcome": "recovered",
            },
            expected_version=event.version,
            reason="Discharge letter received: recovered",
        )
        news = chart.at(discharged + timedelta(days=1), 10, 5)
        follow_up = sae_follow_up(
            event=event,
            by=chart.by,
            password=self.password,
            narrative="Discharged on day 38, recovered. Study drug resumed on day 40.",
            aware_at=news,
            now=news + timedelta(hours=2),
        )
        sae_acknowledge(report=follow_up, by=sponsor, now=news + timedelta(hours=4))
        ae_authority_reported(event=event, by=sponsor, at=aware + timedelta(days=9))

    def _bxp_m1_overdue(self, study, site, group):
        """Inclusion done; the M1 window closed four days ago and the visit is still planned;
        an SAE whose initial report is due within the day."""
        day0 = self._days_ago(41)
        chart = self._enrolled(
            study, site, day0=day0, scr_before=9,
            demographics={"birth_year": 1975, "birth_month": 2, "sex": "F",
                          "childbearing_potential": False},
            diagnosis_year=2025, mrss_total=24, lvef=60,
        )  # fmt: skip
        chart.follow_up(
            day0,
            Assessment("M0", 0, 24, 8, (1, 1, 0, 0, 1, 1, 1, 1), (30, 40, 50, 0, 45, 5, 40),
                       dermal_um=2180),
        )  # fmt: skip
        # A serious event learned of five hours ago: its initial report is due within the day.
        now = timezone.now()
        chart.adverse_event(
            "Infected digital ulcer",
            onset=timezone.localdate(now - timedelta(hours=30)),
            aware=now - timedelta(hours=5),
            ctcae_grade=3,
            serious=True,
            sae_hospitalisation=True,
            outcome="not_recovered",
        )
        return chart.patient

    def _bxp_in_screening(self, study, site, group):
        """Consented six days ago; pre-inclusion under way (echocardiography and labs to come)."""
        scr = self._days_ago(6)
        chart = self._screen_rct(
            study,
            site,
            scr,
            {"birth_year": 1971, "birth_month": 5, "sex": "M"},
        )
        chart.save(
            "SCR",
            "medical_history",
            {"ssc_type": "systemic", "diagnosis_year": 2025, **MEDICAL_HISTORY_NONE},
        )
        chart.save("SCR", "mrss", mrss(scr, 28, chart.assessor))
        return chart.patient

    def _bxp_screen_failure(self, study, site, group):
        """Pre-inclusion complete, but the skin score is too low for I3: a screen failure."""
        scr = self._days_ago(34)
        chart = self._screen_rct(
            study,
            site,
            scr,
            {"birth_year": 1962, "birth_month": 9, "sex": "F", "childbearing_potential": False},
        )
        self._pre_inclusion(chart, scr, diagnosis_year=2025, mrss_total=16, lvef=61, I3=False)
        return patient_screen_fail(
            patient=chart.patient, by=chart.by, reasons="mRSS 16/51 at pre-inclusion: I3 not met"
        )

    def _str_at_m3(self, study, site, group):
        """Strasbourg: M3 done with low platelets awaiting an answer, M6 in two months; an SAE
        whose initial report is overdue."""
        day0 = self._days_ago(100)
        chart = self._enrolled(
            study, site, day0=day0, scr_before=10,
            demographics={"birth_year": 1969, "birth_month": 1, "sex": "M"},
            diagnosis_year=2024, mrss_total=29, lvef=59,
        )  # fmt: skip
        self._follow(
            chart,
            day0,
            (
                Assessment("M0", 0, 28, 10, (1, 1, 1, 0, 1, 1, 2, 1), (40, 45, 55, 25, 20, 20, 50),
                           dermal_um=2390),
                Assessment("M1", 31, 27, 10, (1, 1, 1, 0, 1, 1, 2, 1), (40, 40, 50, 20, 20, 20, 45),
                           returned=680),
                Assessment("M3", 90, 25, 8, (1, 1, 1, 0, 1, 1, 1, 1), (30, 35, 45, 10, 20, 15, 40),
                           returned=452, labs={"platelets_x10e9_l": "45"}),
            ),
        )  # fmt: skip
        # Learned of 30 hours ago and still not reported: overdue on the SAE list.
        now = timezone.now()
        chart.adverse_event(
            "Syncope",
            onset=timezone.localdate(now - timedelta(hours=40)),
            aware=now - timedelta(hours=30),
            ctcae_grade=3,
            serious=True,
            sae_hospitalisation=True,
            relatedness="not_related",
            ongoing=False,
            end_date=timezone.localdate(now - timedelta(hours=20)),
            outcome="recovered",
        )
        return chart.patient

    def _str_in_screening(self, study, site, group):
        """Strasbourg: consented three days ago, inclusion planned in a week: the pregnancy
        test must be dated within the 7 days before it (its first reminder goes today)."""
        scr = self._days_ago(3)
        chart = self._screen_rct(
            study,
            site,
            scr,
            {"birth_year": 1980, "birth_month": 12, "sex": "F", "childbearing_potential": True},
        )
        chart.save(
            "SCR",
            "medical_history",
            {"ssc_type": "systemic", "diagnosis_year": 2026, **MEDICAL_HISTORY_NONE},
        )
        patient_plan_inclusion(
            patient=chart.patient, by=chart.by, planned_date=self.today + timedelta(days=7)
        )
        return chart.patient

    # -- NCT04206644 (Sclero-JAK) ---------------------------------------------------------------

    def _rennes(self, study, site, group, v0: date, demographics: dict) -> Chart:
        by = self.users[INVESTIGATORS[site.code]]
        patient = patient_create(study=study, site=site, by=by, screening_date=v0, group=group)
        chart = Chart(patient, by)
        chart.date("V0", v0)
        chart.consent("V0", v0, "v1.3")
        if demographics:
            chart.save("V0", "demographics", demographics)
        return chart

    def _v0_and_enrol(self, chart: Chart, v0: date, clinical: dict | None, classification):
        """The inclusion visit's forms, the checklist, and enrolment on the same day."""
        if clinical is not None:
            chart.save("V0", "clinical_characteristics", clinical)
        if classification is not None:
            chart.save("V0", *classification)
        chart.save("V0", "safety_labs", labs(v0))
        chart.save(
            "V0", "blood_sample", {"sample_date": v0, "serum_aliquots": 6, "pbmc_isolated": True}
        )
        chart.eligibility("V0")
        chart.patient = patient_enrol(patient=chart.patient, by=chart.by, day0_date=v0)
        return chart

    def _cultures(self, chart: Chart, lab_day: date, cultures, *, serum_donor=None) -> None:
        chart.date("LAB", lab_day)
        for culture in cultures:
            chart.save("LAB", "mdm_cytokines", cytokines(culture, serum_donor))
            if culture.flow:
                chart.save("LAB", "mdm_flow", flow(culture, serum_donor))

    def _ren_ssc_lab_complete(self, study, site, group):
        """SSc, diffuse: inclusion and sampling, then MDM results untreated and ruxolitinib."""
        v0 = self._days_ago(30)
        chart = self._rennes(
            study, site, group, v0, {"birth_year": 1972, "birth_month": 6, "sex": "F",
                                     "childbearing_potential": False},
        )  # fmt: skip
        clinical = {
            "ssc_subset": "diffuse",
            "anti_centromere": False,
            "anti_topoisomerase": True,
            "anti_rna_pol3": False,
            "mrss_total": 18,
            "digital_ulcers": "past",
            "ild_on_ct": True,
            "pah_on_echo": False,
            "disease_duration_years": Decimal("4.5"),
        }
        classification = findings(
            ssc2013.KEYS,
            "skin_thickening_proximal_mcp",
            "sclerodactyly",
            "fingertip_pitting_scars",
            "abnormal_nailfold_capillaries",
            "ild",
            "raynaud",
            "anti_topoisomerase",
        )
        self._v0_and_enrol(chart, v0, clinical, ("ssc_classification", classification))
        self._cultures(chart, v0 + timedelta(days=11), SSC_CULTURES)
        return chart.patient

    def _ren_sle_lab_in_progress(self, study, site, group):
        """SLE: enrolled; the ELISA of the untreated culture is in, flow cytometry to come."""
        v0 = self._days_ago(21)
        chart = self._rennes(
            study, site, group, v0, {"birth_year": 1991, "birth_month": 10, "sex": "F",
                                     "childbearing_potential": True},
        )  # fmt: skip
        clinical = {
            "anti_centromere": False,
            "anti_topoisomerase": False,
            "anti_rna_pol3": False,
            "digital_ulcers": "never",
            "ild_on_ct": False,
            "pah_on_echo": False,
            "disease_duration_years": Decimal("7.0"),
        }
        classification = findings(
            sle2019.KEYS,
            "ana_positive",
            "alopecia",
            "joint_involvement",
            "low_c3",
            "low_c4",
            "anti_dsdna",
        )
        self._v0_and_enrol(chart, v0, clinical, ("sle_classification", classification))
        self._cultures(chart, v0 + timedelta(days=13), (SLE_CULTURE,))
        return chart.patient

    def _ren_hd_with_ssc_serum(self, study, site, group):
        """Healthy donor: macrophages cultured in the first SSc participant's serum."""
        v0 = self._days_ago(16)
        chart = self._rennes(study, site, group, v0, {"birth_year": 1985, "sex": "M"})
        self._v0_and_enrol(chart, v0, None, None)
        donor = (
            Patient.objects.filter(study=study, site=site, group="SSC", day0_date__isnull=False)
            .order_by("subject_code")
            .first()
        )
        self._cultures(chart, v0 + timedelta(days=11), HD_CULTURES, serum_donor=donor)
        return chart.patient

    def _ren_ssc_in_screening(self, study, site, group):
        """SSc: consented two days ago, nothing else recorded yet."""
        return self._rennes(study, site, group, self._days_ago(2), {}).patient
