"""French labels beside the English ones: form titles, visit names, arms, groups, criteria.

The screens print `.label` / `.name`, which answer in the request's language; the criteria
keep the registry's English verbatim and show the French translation above it. Adding or
changing translations updates a loaded version in place, since the protocol's own words
(the English) are unchanged; anything else is still an amendment.
"""

from __future__ import annotations

from pathlib import Path

import pghistory.models
import pytest
import yaml
from django.urls import reverse
from django.utils import timezone, translation

from ecrf.studies.loader import load_protocol
from ecrf.studies.models import ProtocolVersion
from ecrf.studies.protocol import ProtocolError, read_protocol
from tests.factories import PatientFactory, UserFactory
from tests.walks.helpers import date_visit, form_url, saved, screen, visit_url

PROTOCOLS = Path(__file__).resolve().parents[2] / "ecrf" / "studies" / "protocols"
RCT_FILE = PROTOCOLS / "NCT00479934.yaml"
COHORT_FILE = PROTOCOLS / "NCT04206644.yaml"
TRANSLATIONS = ("label_fr", "name_fr", "text_fr")


def untranslated(data):
    if isinstance(data, dict):
        return {k: untranslated(v) for k, v in data.items() if k not in TRANSLATIONS}
    if isinstance(data, list):
        return [untranslated(v) for v in data]
    return data


def write(tmp_path, data, name="NCT00479934.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def shipped(path: Path = RCT_FILE) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", [RCT_FILE, COHORT_FILE], ids=["trial", "cohort"])
def test_every_label_of_the_shipped_protocols_has_its_french(path):
    protocol = read_protocol(path)
    missing = [
        f"{kind} {item.code}"
        for kind, items in (
            ("form", protocol.forms),
            ("arm", protocol.arms),
            ("group", protocol.groups),
        )
        for item in items
        if not item.label_fr
    ]
    missing += [f"visit {v.code}" for v in protocol.visits if not v.name_fr]
    missing += [f"criterion {c.id}" for c in protocol.eligibility if not c.text_fr]
    assert missing == []


def test_labels_and_names_follow_the_request_language():
    protocol = read_protocol(RCT_FILE)
    with translation.override("fr"):
        assert protocol.form("consent").label == "Consentement éclairé"
        assert protocol.form("drug_dispensing").label == "Dispensation du traitement de l'étude"
        assert protocol.visit("SCR").name == "Pré-inclusion"
        assert protocol.visit("M6").name == "Mois 6, fin du traitement"
        assert protocol.arms[1].label == "Placebo"
    with translation.override("en"):
        assert protocol.form("consent").label == "Informed consent"
        assert protocol.visit("SCR").name == "Pre-inclusion"
        assert protocol.visit("M6").name == "Month 6, end of treatment"
    cohort = read_protocol(COHORT_FILE)
    with translation.override("fr"):
        assert [g.label for g in cohort.groups][
            2
        ] == "Donneurs sains (Établissement français du sang)"
    with translation.override("en"):
        assert [g.label for g in cohort.groups][2] == "Healthy donors (EFS blood bank)"


def test_criteria_keep_the_registry_english_with_the_french_beside_it():
    criteria = {c.id: c for c in read_protocol(RCT_FILE).eligibility}
    with translation.override("fr"):
        assert criteria["E7"].text == (
            "myocardial infarction of less than 6 mois at pre inclusion visit"
        )
        assert criteria["E7"].translation == (
            "Infarctus du myocarde datant de moins de 6 mois à la visite de pré-inclusion"
        )
        assert criteria["E3"].translation == "Sclérodermie «\u00a0en coup de sabre\u00a0»"
    with translation.override("en"):
        assert criteria["E7"].translation is None


def test_a_label_without_french_reads_in_english_on_french_pages(tmp_path):
    data = shipped()
    del data["forms"][0]["label_fr"]
    del data["visits"][0]["name_fr"]
    protocol = read_protocol(write(tmp_path, data))
    with translation.override("fr"):
        assert protocol.form("demographics").label == "Demographics"
        assert protocol.visit("SCR").name == "Pre-inclusion"


def test_a_definition_stored_before_translations_still_reads(tmp_path):
    """Versions loaded before this change hold plain labels: they must still validate."""
    protocol = read_protocol(write(tmp_path, untranslated(shipped())))
    with translation.override("fr"):
        assert protocol.form("consent").label == "Informed consent"
        assert protocol.eligibility[0].translation is None


def test_empty_french_label_is_refused_with_its_place(tmp_path):
    data = shipped()
    data["forms"][1]["label_fr"] = ""
    with pytest.raises(ProtocolError) as excinfo:
        read_protocol(write(tmp_path, data))
    assert "forms[1].label_fr: must not be empty" in str(excinfo.value)


@pytest.mark.django_db
@pytest.mark.usefixtures("no_protocols")
def test_translations_update_the_loaded_version_in_place_and_audited(tmp_path):
    before = load_protocol(write(tmp_path, untranslated(shipped()))).protocol_version
    patient = PatientFactory(study=before.study, site=before.study.sites.get(code="BXP"))
    admin = UserFactory(username="admin")

    result = load_protocol(RCT_FILE, by=admin)

    assert (result.created, result.translated) == (False, True)
    assert result.protocol_version.pk == before.pk
    assert ProtocolVersion.objects.filter(study=before.study).count() == 1
    patient.refresh_from_db()
    with translation.override("fr"):
        assert patient.protocol_version.protocol.form("consent").label == "Consentement éclairé"
    (event,) = pghistory.models.Events.objects.tracks(before).filter(pgh_label="update")
    assert event.pgh_context["reason"].startswith("translations of ")
    assert event.pgh_context["user"] == admin.pk
    again = load_protocol(RCT_FILE)
    assert (again.created, again.translated) == (False, False)


@pytest.mark.django_db
@pytest.mark.usefixtures("no_protocols")
def test_a_changed_english_label_under_the_same_version_is_still_refused(tmp_path):
    load_protocol(RCT_FILE)
    data = shipped()
    data["forms"][1]["label"] = "Consent"
    with pytest.raises(ProtocolError) as excinfo:
        load_protocol(write(tmp_path, data))
    assert "already loaded with different content" in str(excinfo.value)


@pytest.mark.django_db
def test_french_casebook_shows_french_form_and_visit_labels(client, world):
    client.force_login(world.alice)
    patient = screen(client, world.rct, site="BXP", screening_date=timezone.localdate())
    url = reverse("patients:detail", args=[world.rct.code, patient.subject_code])

    french = client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    for text in ("Données démographiques", "Consentement éclairé", "Pré-inclusion"):
        assert text in french
    for text in ("Demographics", "Informed consent", "Pre-inclusion"):
        assert text not in french

    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Demographics" in english and "Pre-inclusion" in english
    assert "Données démographiques" not in english


@pytest.mark.django_db
def test_french_checklist_reads_the_translation_with_the_verbatim_english_under_it(client, world):
    client.force_login(world.alice)
    patient = screen(client, world.rct, site="BXP", screening_date=timezone.localdate())
    saved(date_visit(client, patient, "SCR", patient.screening_date))

    response = client.get(form_url(patient, "SCR", "eligibility"), HTTP_ACCEPT_LANGUAGE="fr")

    field = response.context["form"].fields["criterion_E9"]
    assert field.label == "E9 · Chirurgie majeure moins de deux semaines avant l'inclusion"
    assert '<span lang="en" class="d-block fst-italic">' in str(field.help_text)
    assert "Major surgery less than two weeks before inclusion" in response.content.decode()
    visit_page = client.get(visit_url(patient, "SCR"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "SCR · Pré-inclusion" in visit_page
    assert "Vérification des critères d&#x27;éligibilité" in visit_page
