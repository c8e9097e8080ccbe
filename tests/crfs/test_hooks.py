"""What makes a form different is declared on its model: no code tests a form code, and the
apps above crfs hear of a saved form through a signal bound to its model."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from ecrf.crfs.models import FORM_MODELS, Echocardiography, Mrss, SafetyLabs
from ecrf.crfs.services import crf_save
from ecrf.crfs.signals import crf_saved
from ecrf.patients.services import patient_create
from ecrf.patients.visits import visit_record_date
from ecrf.scoring import mrss as mrss_scoring

CRFS = Path(__file__).resolve().parents[2] / "ecrf" / "crfs"
TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "crfs"
TODAY = timezone.localdate()


def test_no_code_of_crfs_tests_a_form_code():
    sources = [*CRFS.glob("*.py"), *TEMPLATES.glob("*.html")]
    tested = re.compile(r"(form_code|FORM_CODE|code)\s*[!=]=\s*['\"]")
    assert [p.name for p in sources if tested.search(p.read_text())] == []


def test_crfs_never_imports_the_apps_above_it():
    imports = re.compile(r"^\s*(from|import) ecrf\.(safety|review|exports|api)\b", re.M)
    assert [p.name for p in CRFS.rglob("*.py") if imports.search(p.read_text())] == []


def test_safety_listens_to_the_safety_labs_form_only():
    assert crf_saved.has_listeners(SafetyLabs)
    others = [code for code, model in FORM_MODELS.items() if model is not SafetyLabs]
    assert [code for code in others if crf_saved.has_listeners(FORM_MODELS[code])] == []


@pytest.mark.django_db
def test_a_receiver_that_fails_undoes_the_form_it_heard_of(world):
    patient = patient_create(study=world.rct, site=world.bxp, by=world.alice, screening_date=TODAY)
    scr = visit_record_date(visit=patient.visits.get(code="SCR"), by=world.alice, visit_date=TODAY)
    consent = {"consent_date": TODAY, "consent_version": "2.1", "signed_by_investigator": True}
    crf_save(visit=scr, form_code="consent", values=consent, by=world.alice, expected_version=0)
    heard = []

    def refuse(sender, *, instance, by, **kwargs):
        heard.append((sender, instance.pk, by))
        raise RuntimeError("the receiver failed")

    crf_saved.connect(refuse, sender=Mrss, dispatch_uid="test.refuse")
    try:
        with pytest.raises(RuntimeError):
            crf_save(visit=scr, form_code="mrss", values=dict.fromkeys(mrss_scoring.AREAS, 1),
                     by=world.alice, expected_version=0)  # fmt: skip
    finally:
        crf_saved.disconnect(sender=Mrss, dispatch_uid="test.refuse")
    assert heard == [(Mrss, heard[0][1], world.alice)] and heard[0][1] is not None
    assert not Mrss.objects.exists()


def test_the_models_declare_what_the_screens_and_the_service_read():
    assert Mrss.AREA_GRID.fields == frozenset(mrss_scoring.AREAS)
    assert Mrss.LIVE_TOTAL == ("total",) and Echocardiography.LIVE_TOTAL == ()
    assert [code for code, m in FORM_MODELS.items() if m.RECORDS_CONSENT] == ["consent"]
    assert [code for code, m in FORM_MODELS.items() if m.PROTOCOL_CHECKLIST] == ["eligibility"]
    low = Echocardiography(lvef_pct=25).soft_warnings()
    assert [w.code for w in low] == ["lvef_low"]
    assert Echocardiography(lvef_pct=30).soft_warnings() == []


@pytest.mark.django_db
def test_the_mrss_warns_of_a_fall_of_more_than_half_since_the_previous_visit(world, make, visit):
    from tests.crfs.conftest import make_visit

    visit.visit_date = TODAY - timedelta(days=30)
    visit.save()
    make(Mrss, **dict.fromkeys(mrss_scoring.AREAS, 2))  # 34
    later = make_visit(visit.patient, code="M1", sequence=2)
    later.visit_date = TODAY
    later.save()
    now = Mrss(patient=visit.patient, visit=later, **dict.fromkeys(mrss_scoring.AREAS, 1))
    now.compute_derived()  # 17: half, not more
    assert now.soft_warnings() == []
    now.face = 0
    now.compute_derived()
    assert [w.code for w in now.soft_warnings()] == ["mrss_drop"]
