"""The SDV plan: the protocol file's `sdv:` section, validated and updated in place, and
which forms of which patients it has verified (100 % forms always, the others for a
reproducible, seeded sample of the patients)."""

from __future__ import annotations

import copy

import pghistory.models
import pytest

from ecrf.patients.models import Patient
from ecrf.review.plan import sdv_required, sdv_sampled, subject_sampled
from ecrf.studies.loader import load_protocol
from ecrf.studies.models import ProtocolVersion
from ecrf.studies.protocol import SdvSpec, read_protocol
from tests.factories import UserFactory
from tests.studies.test_french_labels import COHORT_FILE, RCT_FILE, shipped, write
from tests.studies.test_protocol_schema import broken  # noqa: F401 (fixture)

CODES = [f"BXP-{n:03d}" for n in range(1, 1001)]


# -- the section in the file ---------------------------------------------------------------


def test_the_shipped_plans():
    trial = read_protocol(RCT_FILE).sdv
    assert trial == SdvSpec(
        always=("consent", "eligibility", "mrss"), serious_adverse_events=True, sample_percent=25
    )
    cohort = read_protocol(COHORT_FILE).sdv
    assert cohort.always == ("consent", "eligibility", "mdm_cytokines")
    assert cohort.sample_percent == 25


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"always": ["consent", "blood_sample"]},
            "sdv.always[1]: 'blood_sample' is not in this study's forms (demographics, "
            "consent, medical_history, eligibility, mrss, echocardiography, safety_labs, "
            "pregnancy_test, skin_biopsy, dlqi, haq, drug_dispensing, drug_accountability, "
            "adverse_event)",
        ),
        ({"always": ["consent", "mrss", "consent"]}, "sdv.always[2]: 'consent' is listed twice"),
        ({"sample_percent": 120}, "sdv.sample_percent: must be <= 100, not 120"),
        ({"sample_percent": -5}, "sdv.sample_percent: must be >= 0, not -5"),
        # The seed is the deployment's secret (SDV_SEED), never a line of the file.
        ({"seed": "s3cr3t"}, "sdv.seed: unknown field"),
    ],
)
def test_an_invalid_sdv_section_is_refused_with_its_place(broken, change, problem):  # noqa: F811
    problems = broken(lambda d: d["sdv"].update(change))
    assert problems == [f"bad.yaml: {problem}"]


def test_an_unknown_form_is_refused_with_a_suggestion(broken):  # noqa: F811
    problems = broken(lambda d: d["sdv"].update({"always": ["mrs"]}))
    assert len(problems) == 1
    assert problems[0].startswith("bad.yaml: sdv.always[0]: unknown form 'mrs', did you mean")


def test_without_a_plan_every_form_is_verified():
    spec = SdvSpec()
    assert spec.sample_percent == 100
    assert spec.requires(
        "dlqi",
        sampled=subject_sampled(
            seed="any", study_code="NCT00479934", subject_code="BXP-001", percent=100
        ),
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("no_protocols")
def test_a_changed_plan_updates_the_loaded_version_in_place_audited(tmp_path):
    before = load_protocol(RCT_FILE).protocol_version
    data = copy.deepcopy(shipped())
    data["sdv"]["sample_percent"] = 40
    data["sdv"]["always"].append("echocardiography")

    diane = UserFactory(username="diane")
    result = load_protocol(write(tmp_path, data), by=diane)

    assert (result.created, result.updated) == (False, ("sdv",))
    assert ProtocolVersion.objects.filter(study=before.study).count() == 1
    before.refresh_from_db()
    assert before.protocol.sdv.sample_percent == 40
    assert "echocardiography" in before.protocol.sdv.always
    (event,) = pghistory.models.Events.objects.tracks(before).filter(pgh_label="update")
    assert event.pgh_context["reason"].startswith("sdv of ")
    assert event.pgh_context["user"] == diane.pk


@pytest.mark.django_db
@pytest.mark.usefixtures("no_protocols")
def test_a_version_loaded_before_the_plan_existed_takes_it_in_place(tmp_path):
    data = copy.deepcopy(shipped())
    del data["sdv"]
    first = load_protocol(write(tmp_path, data, name="old.yaml")).protocol_version
    assert first.protocol.sdv.sample_percent == 100  # no plan: everything

    result = load_protocol(RCT_FILE)
    assert (result.protocol_version, result.updated) == (first, ("sdv",))


# -- which forms of which patients ---------------------------------------------------------


def test_the_same_subject_code_always_gets_the_same_answer():
    first = [
        subject_sampled(seed="s", study_code="NCT00479934", subject_code=c, percent=25)
        for c in CODES
    ]
    again = [
        subject_sampled(seed="s", study_code="NCT00479934", subject_code=c, percent=25)
        for c in CODES
    ]
    assert first == again


def test_about_the_share_of_the_patients_is_sampled():
    for percent in (10, 25, 50):
        drawn = sum(
            subject_sampled(seed="s", study_code="NCT00479934", subject_code=c, percent=percent)
            for c in CODES
        )
        # 1000 draws: the binomial's standard deviation is at most 16 (for 50 %).
        assert abs(drawn - 10 * percent) < 60, (percent, drawn)


def test_none_and_all():
    assert not any(
        subject_sampled(seed="s", study_code="X", subject_code=c, percent=0) for c in CODES
    )
    assert all(
        subject_sampled(seed="s", study_code="X", subject_code=c, percent=100) for c in CODES
    )


def test_another_seed_or_study_draws_another_sample():
    """The site, which knows the codes and the share, cannot compute the sample."""

    def sample(seed, study):
        return {
            c
            for c in CODES
            if subject_sampled(seed=seed, study_code=study, subject_code=c, percent=25)
        }

    base = sample("deployment-secret", "NCT00479934")
    assert base != sample("another-secret", "NCT00479934")
    assert base != sample("deployment-secret", "NCT04206644")
    # A sample is not the first codes, nor every fourth one.
    assert base != set(CODES[:250]) and base != set(CODES[::4])


@pytest.mark.django_db
def test_the_hundred_percent_forms_are_required_at_every_visit(world, sample):
    patient = world.bxp_patients[0]
    sample({patient: False})
    protocol = patient.protocol_version.protocol
    for visit in protocol.visits:
        for form in visit.forms:
            expected = form.form in ("consent", "eligibility", "mrss")
            assert sdv_required(patient, form.form) == expected, (visit.code, form.form)


@pytest.mark.django_db
def test_a_sampled_patient_has_every_form_required(world, sample):
    patient = world.bxp_patients[0]
    sample({patient: True})
    protocol = patient.protocol_version.protocol
    assert all(sdv_required(patient, f.form) for v in protocol.visits for f in v.forms)
    assert sdv_sampled(patient)


@pytest.mark.django_db
def test_the_draw_reads_the_subject_code_only(world, settings):
    patient = world.bxp_patients[0]
    settings.SDV_SEED = "fixed"
    twin = Patient(subject_code=patient.subject_code, protocol_version=patient.protocol_version)
    assert sdv_sampled(twin) == sdv_sampled(Patient.objects.get(pk=patient.pk))
