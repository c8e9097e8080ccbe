"""The patient's audit trail as a monitor reads it: named objects, values in the reader's
words and formats, no bookkeeping columns, blinding kept, a fixed number of queries."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from html import unescape
from zoneinfo import ZoneInfo

import pghistory
import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from ecrf.accounts.models import Membership
from ecrf.audit.context import audited
from ecrf.crfs.models import Consent, Demographics, Eligibility, MdmCytokines, SafetyLabs
from ecrf.crfs.services import crf_save
from ecrf.patients.models import FormIndexEntry, Patient, Visit
from ecrf.patients.services import patient_create
from ecrf.patients.visits import visit_record_date
from ecrf.review.queries import query_raise
from ecrf.review.sdv import sdv_mark
from ecrf.safety.services import ae_create
from ecrf.studies.models import Site
from tests.factories import AllocationFactory

pytestmark = pytest.mark.django_db

SCREENED = date(2026, 9, 15)


def ae_values(term: str = "Raynaud flare", **overrides) -> dict:
    """A complete, non-serious adverse event; the site became aware at 09:00 UTC."""
    values = {
        "term": term,
        "meddra_llt_code": "",
        "meddra_pt_code": "",
        "onset_date": "2026-10",
        "end_date": date(2026, 10, 5),
        "ongoing": False,
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
        "outcome": "recovered",
        "death_date": None,
        "aware_at": datetime(2026, 10, 2, 9, 0, tzinfo=UTC),
    }
    return values | overrides


def consented(world) -> tuple[Patient, Visit]:
    """Screened at Bordeaux by Alice, screening visit dated, consent recorded."""
    patient = patient_create(
        study=world.rct, site=world.bxp, by=world.alice, screening_date=SCREENED
    )
    visit = visit_record_date(
        visit=patient.visits.get(code="SCR"), by=world.alice, visit_date=SCREENED
    )
    crf_save(
        visit=visit,
        form_code="consent",
        values={
            "consent_date": SCREENED,
            "consent_version": "2.1",
            "signed_by_investigator": True,
        },
        by=world.alice,
        expected_version=0,
    )
    return patient, visit


def checklist(patient: Patient, **answers) -> dict:
    """The eligible answers of the patient's protocol, with some overridden."""
    criteria = patient.protocol_version.protocol.eligibility_for(None)
    return {c.id: c.kind == "inclusion" for c in criteria} | answers


def page(client, user, patient: Patient, language: str = "en"):
    client.force_login(user)
    url = reverse("patients:audit", args=[patient.study.code, patient.subject_code])
    response = client.get(url, headers={"accept-language": language})
    assert response.status_code == 200
    return response


def rows(response) -> list[str]:
    """Each row of the trail as the reader sees it: its text, spaces collapsed."""
    html = response.content.decode()
    body = html[html.index("<tbody>") : html.index("</tbody>")]
    return [" ".join(unescape(strip_tags(row)).split()) for row in body.split("</tr>")[:-1]]


def text(response) -> str:
    return "\n".join(rows(response))


def row_of(response, *parts: str) -> str:
    (row,) = [r for r in rows(response) if all(part in r for part in parts)]
    return row


# -- names --------------------------------------------------------------------------------


def test_objects_are_named_as_the_protocol_and_the_screens_name_them(client, world):
    patient, visit = consented(world)
    ae_create(patient=patient, by=world.alice, values=ae_values())
    shown = text(page(client, world.monica, patient))
    assert f"Patient {patient.subject_code} created" in shown
    assert "Visit SCR (Pre-inclusion) created" in shown
    assert "Visit SCR (Pre-inclusion) changed" in shown  # dated
    assert "Informed consent · Visit SCR (Pre-inclusion) created" in shown
    assert "Adverse event AE-001 “Raynaud flare” created" in shown
    # Never a model and a database id.
    assert not re.search(r"(?i)\b(visit|informed consent|adverse event|patient) \d+\b", shown)


def test_a_deleted_row_keeps_the_name_of_its_last_data(client, world):
    patient, _visit = consented(world)
    extra = Visit.objects.create(
        patient=patient,
        code="UNS",
        repeat=2,
        sequence=7,
        protocol_version=patient.protocol_version,
        visit_date=SCREENED,
    )
    form = Demographics.objects.create(
        patient=patient,
        visit=extra,
        protocol_version=patient.protocol_version,
        entered_by=world.alice,
        birth_year=1970,
    )
    with audited(by=world.alice, reason="entered on the wrong patient"):
        form.delete()
        extra.delete()
    response = page(client, world.monica, patient)
    deleted = row_of(response, "Demographics · Visit UNS #2 (Unscheduled) deleted")
    assert "Year of birth: 1970" in deleted
    assert "entered on the wrong patient" in deleted
    assert [r for r in rows(response) if "Visit UNS #2 (Unscheduled) deleted" in r and "·" not in r]


# -- dates, times and values --------------------------------------------------------------


def test_times_in_the_site_time_zone_and_dates_in_the_readers_format(client, world):
    # Nouméa is UTC+11 all year round: neither the server's zone nor UTC.
    Site.objects.filter(pk=world.bxp.pk).update(timezone="Pacific/Noumea")
    patient, _visit = consented(world)
    ae_create(patient=patient, by=world.alice, values=ae_values())
    created = pghistory.models.Events.objects.tracks(patient).get().pgh_created_at
    local = timezone.localtime(created, ZoneInfo("Pacific/Noumea"))

    english = page(client, world.monica, patient, "en")
    assert row_of(english, f"Patient {patient.subject_code} created").startswith(
        local.strftime("%d %b %Y %H:%M")
    )
    consent = row_of(english, "Informed consent · Visit SCR (Pre-inclusion) created")
    assert "Date of consent: 15 Sep 2026" in consent
    event = row_of(english, "Adverse event AE-001")
    assert "Investigator aware at: 02 Oct 2026 20:00" in event  # 09:00 UTC in Nouméa
    assert "Onset date: October 2026" in event  # a partial date keeps its precision
    assert "End date: 05 Oct 2026" in event

    french = page(client, world.monica, patient, "fr")
    assert row_of(french, f"Patient {patient.subject_code}").startswith(
        local.strftime("%d/%m/%Y %H:%M")
    )
    shown = text(french)
    assert "15/09/2026" in shown
    assert "02/10/2026 20:00" in shown
    assert "octobre 2026" in shown
    for iso in ("2026-09-15", "2026-10-02", "T09:00", "+00:00"):
        assert iso not in text(english) + shown


def test_yes_no_not_answered_empty_and_numbers_as_the_forms_show_them(client, world):
    patient, visit = consented(world)
    consent = Consent.objects.get(patient=patient)
    with audited(by=world.alice, reason="signature not found in the source"):
        consent.signed_by_investigator = None
        consent.consent_version = ""
        consent.save()
    SafetyLabs.objects.create(
        patient=patient,
        visit=visit,
        protocol_version=patient.protocol_version,
        entered_by=world.alice,
        hemoglobin_g_dl=Decimal("12.5"),
        neutrophils_x10e9_l=Decimal("4.50"),
        ast_u_l=Decimal("31.0"),
    )
    english = page(client, world.monica, patient, "en")
    changed = row_of(english, "Informed consent", "changed")
    assert "Signed by the investigator: Yes → Not answered" in changed
    assert "Consent form version: 2.1 → —" in changed
    assert "Signed by the investigator: Yes" in row_of(english, "Informed consent", "created")
    labs = row_of(english, "Safety laboratory tests · Visit SCR")
    assert "Hemoglobin (g/dL): 12.5" in labs
    assert "Neutrophils (×10⁹/L): 4.5 " in labs + " "
    assert "AST (SGOT) (U/L): 31 " in labs + " "
    assert "Bilirubin" not in labs  # not entered: a creation lists the values given
    french = row_of(page(client, world.monica, patient, "fr"), "12,5")
    assert "4,5" in french


def test_choices_are_shown_by_their_labels(client, world):
    patient, _visit = consented(world)
    with audited(by=world.alice, reason="withdrew consent"):
        patient.status = Patient.Status.WITHDRAWN
        patient.save()
    changed = row_of(page(client, world.monica, patient), f"Patient {patient.subject_code} changed")
    assert "Status: Screening → Withdrawn" in changed


def test_the_field_of_a_query_and_of_an_sdv_mark_is_named_by_its_label(client, world):
    patient, _visit = consented(world)
    entry = FormIndexEntry.objects.get(patient=patient, form_code="consent")
    query_raise(
        by=world.monica, entry=entry, field="consent_version", text="Which version was signed?"
    )
    sdv_mark(by=world.monica, entry=entry, fields=["consent_date"], expected_version=1)
    response = page(client, world.monica, patient)
    raised = row_of(response, "Query · Visit SCR (Pre-inclusion) created")
    assert "Field: consent form version" in raised
    marked = row_of(response, "SDV mark", "created")
    assert "Field: date of consent" in marked
    assert "consent_version" not in text(response) and "consent_date" not in text(response)


# -- what is left out ---------------------------------------------------------------------


def test_bookkeeping_columns_are_not_shown_but_a_confirmed_warning_is(client, world):
    patient, visit = consented(world)
    crf_save(
        visit=visit,
        form_code="echocardiography",
        values={"exam_date": SCREENED, "lvef_pct": 25},
        by=world.alice,
        expected_version=0,
        confirmed=frozenset({"lvef_low"}),
    )
    response = page(client, world.monica, patient)
    shown = text(response)
    for bookkeeping in (
        "onfirmed warnings",
        "[]",
        "Version:",
        "Updated at",
        "Entered at",
        "Entered by",  # Alice, who is in "Who"
        "Patient:",  # the page's patient
        "Study:",
        "Sequence",
        "Code:",  # a visit's code is in its name
        "Subject code",
    ):
        assert bookkeeping not in shown, bookkeeping
    # The patient's protocol version is said once, when the patient is screened.
    assert shown.count("Protocol version: NCT00479934 v") == 1
    echo = row_of(response, "Echocardiography · Visit SCR (Pre-inclusion) created")
    assert "Left ventricular ejection fraction (%): 25" in echo
    assert "Warning confirmed: LVEF 25 % is under 30 %." in echo


def test_an_update_of_bookkeeping_only_is_left_out_unless_it_gives_a_reason(client, world):
    patient, _visit = consented(world)
    consent = Consent.objects.get(patient=patient)
    consent.save()  # only its save time changes
    consent.version += 1
    consent.save()
    response = page(client, world.monica, patient)
    assert not [r for r in rows(response) if "Informed consent" in r and "changed" in r]
    assert response.context["skipped"] == 2
    assert (
        "2 updates changed only bookkeeping (a version number, a save time) and gave no "
        "reason: they are not listed." in " ".join(response.content.decode().split())
    )

    with audited(by=world.alice, reason="saved again after the source check"):
        consent.save()
    response = page(client, world.monica, patient)
    kept = row_of(response, "Informed consent", "changed")
    assert "No change to the data: only the record's bookkeeping" in kept
    assert "saved again after the source check" in kept
    assert response.context["skipped"] == 2


# -- JSON answers -------------------------------------------------------------------------


def test_checklist_changes_list_only_the_criteria_that_changed(client, world):
    patient, visit = consented(world)
    first = crf_save(
        visit=visit,
        form_code="eligibility",
        values={"answers": checklist(patient, I3=False)},
        by=world.alice,
        expected_version=0,
    )
    crf_save(
        visit=visit,
        form_code="eligibility",
        values={"answers": checklist(patient, I3=True, E5=None)},
        by=world.alice,
        expected_version=first.version,
        reason="mRSS of 24 in the source",
    )
    response = page(client, world.monica, patient)
    changed = row_of(response, "Eligibility checklist · Visit SCR (Pre-inclusion) changed")
    assert "I3: No → Yes" in changed
    assert "E5: No → Not answered" in changed
    assert "m-Rodnan score > 20/51" in changed  # the criterion, beside its id
    assert "I1:" not in changed and "I2:" not in changed
    assert "Checklist answers" not in changed
    created = row_of(response, "Eligibility checklist · Visit SCR (Pre-inclusion) created")
    assert "I1: Yes" in created and "I3: No" in created and "E1: No" in created
    french = row_of(page(client, world.monica, patient, "fr"), "modifi", "I3")
    assert "I3 : Non → Oui" in french  # the page writes a non-breaking space before the colon
    assert "Sclérodermie cutanée sévère" in french  # the protocol's French wording


# -- who may read what ----------------------------------------------------------------------


def test_blinding_holds_for_changes_and_names(client, world):
    patient = world.bxp_patients[0]
    allocation = AllocationFactory(patient=patient, arm="IMA", allocated_by=world.alice)
    with audited(by=world.diane, reason="list imported with the wrong block"):
        allocation.arm = "PBO"
        allocation.block_size = 2
        allocation.save()
    blinded = page(client, world.monica, patient)
    changed = row_of(blinded, f"Allocation of kit {allocation.kit_number} changed")
    assert "Arm: (blinded) → (blinded)" in changed
    assert "Block size: (blinded) → (blinded)" in changed
    html = blinded.content.decode()
    assert "IMA" not in html and "PBO" not in html
    assert "Kit number: K-" in row_of(blinded, "Allocation of kit", "created")

    Membership.objects.filter(user=world.diane, study=world.rct).update(unblinded=True)
    unblinded = page(client, world.diane, patient)
    assert "Arm: IMA → PBO" in row_of(unblinded, "Allocation of kit", "changed")


def test_another_participants_rows_are_not_in_this_trail(client, world):
    """A healthy donor's culture in this participant's serum is the donor's data."""
    ssc, donor = world.ren_patients
    lab = Visit.objects.create(
        patient=donor, code="LAB", sequence=2, protocol_version=donor.protocol_version
    )
    MdmCytokines.objects.create(
        patient=donor,
        visit=lab,
        protocol_version=donor.protocol_version,
        entered_by=world.rene,
        condition="hd_serum_untreated",
        serum_donor=ssc,
        il6_pg_ml=Decimal("18.25"),
    )
    assert "MDM cytokines" not in page(client, world.diane, ssc).content.decode()
    donors = row_of(page(client, world.diane, donor), "MDM cytokines (ELISA)", "created")
    assert "Healthy donor MDM + SSc serum, untreated · Visit LAB (Laboratory results)" in donors
    assert f"Serum donor: {ssc.subject_code}" in donors
    assert "IL-6 (pg/mL): 18.25" in donors


# -- cost ---------------------------------------------------------------------------------


@pytest.mark.parametrize("times", [1, 4])
def test_the_page_costs_the_same_whatever_the_number_of_events(
    client, world, django_assert_num_queries, times
):
    """Visits, forms, checklist answers, adverse events, an allocation, deleted rows: the
    names and values come from the events and from one query per model they point at."""
    patient, visit = consented(world)
    AllocationFactory(patient=patient, allocated_by=world.alice)
    crf_save(
        visit=visit,
        form_code="eligibility",
        values={"answers": checklist(patient)},
        by=world.alice,
        expected_version=0,
    )
    for n in range(times):
        extra = Visit.objects.create(
            patient=patient,
            code="UNS",
            repeat=n + 1,
            sequence=7,
            protocol_version=patient.protocol_version,
            visit_date=SCREENED,
        )
        form = Demographics.objects.create(
            patient=patient,
            visit=extra,
            protocol_version=patient.protocol_version,
            entered_by=world.bob,
            birth_year=1970 + n,
        )
        with audited(by=world.alice, reason=f"correction {n}"):
            form.birth_year += 1
            form.save()
        if n % 2:
            with audited(by=world.alice, reason="entered in error"):
                form.delete()
        ae_create(patient=patient, by=world.alice, values=ae_values(term=f"Event {n}"))
        eligibility = Eligibility.objects.get(patient=patient)
        with audited(by=world.bob, reason=f"answer {n} checked"):
            eligibility.answers = eligibility.answers | {"I3": bool(n % 2)}
            eligibility.save()
    client.force_login(world.monica)
    url = reverse("patients:audit", args=[world.rct.code, patient.subject_code])
    # Session, user, the account's memberships (roles, blinding, the second factor), study,
    # patient (with site and protocol version), the events, then one query per model they
    # point at that they do not hold: users. The same for 11 entries and for 28.
    with django_assert_num_queries(8):
        response = client.get(url, headers={"accept-language": "en"})
    entries = response.context["entries"]
    assert len(entries) == (11 if times == 1 else 28)
    assert {e.subject.split(" · ")[0] for e in entries} >= {
        "Demographics",
        "Eligibility checklist",
        "Informed consent",
        f"Patient {patient.subject_code}",
        "Visit SCR (Pre-inclusion)",
    }


def test_the_services_own_reasons_read_in_the_readers_language():
    from django.utils import translation

    from ecrf.review.audit_trail import reason_shown

    with translation.override("fr"):
        assert reason_shown("first entry") == "saisie initiale"
        assert reason_shown("screen failure: I2 not met") == "échec de sélection\u00a0: I2 not met"
        assert (
            reason_shown("Valeur relue sur le compte rendu") == "Valeur relue sur le compte rendu"
        )
    with translation.override("en"):
        assert reason_shown("first entry") == "first entry"
