"""Loading protocol files into the database: idempotent, versioned, audited, all or nothing."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pghistory.models
import pytest
import yaml
from django.core.management import CommandError, call_command

from ecrf.studies.loader import load_protocol
from ecrf.studies.models import ProtocolVersion, Site, Study, StudySite
from ecrf.studies.protocol import ProtocolError, read_protocol
from tests.factories import PatientFactory, UserFactory

# On an empty database: the session's seed protocols are removed for each test (rolled back).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_protocols")]

PROTOCOLS = Path(__file__).resolve().parents[2] / "ecrf" / "studies" / "protocols"
RCT_FILE = PROTOCOLS / "NCT00479934.yaml"
COHORT_FILE = PROTOCOLS / "NCT04206644.yaml"


def counts() -> dict[str, int]:
    return {
        "studies": Study.objects.count(),
        "sites": Site.objects.count(),
        "links": StudySite.objects.count(),
        "versions": ProtocolVersion.objects.count(),
        "events": pghistory.models.Events.objects.count(),
    }


@pytest.fixture
def variant(tmp_path):
    """Write a changed copy of a shipped protocol and return its path."""

    def write(change, source: Path = RCT_FILE, name: str = "variant.yaml") -> Path:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        change(data)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        return path

    return write


def amendment(data: dict) -> None:
    data["version"] = "1.1"
    data["effective_date"] = "2026-06-01"
    data["visits"][2]["window_before_days"] = 10  # M1: -10/+7 instead of -7/+7


# -- first load -------------------------------------------------------------------------------


def test_loading_both_files_creates_the_studies_sites_and_versions():
    rct = load_protocol(RCT_FILE)
    cohort = load_protocol(COHORT_FILE)

    assert rct.created and cohort.created
    study = Study.objects.get(code="NCT00479934")
    assert (study.acronym, study.title, study.sponsor) == (
        "Imatinib-Scleroderma",
        "Efficacy and Safety of Imatinib in Scleroderma",
        "University Hospital, Bordeaux",
    )
    assert (study.design, study.blinded, study.target_enrolment) == ("interventional", True, 28)
    sclero_jak = Study.objects.get(code="NCT04206644")
    assert (sclero_jak.design, sclero_jak.blinded, sclero_jak.target_enrolment) == (
        "observational",
        False,
        150,
    )
    assert study.sites.count() == 12
    assert list(sclero_jak.sites.values_list("code", "name", "city")) == [
        ("REN", "Rennes University Hospital", "Rennes")
    ]
    assert not StudySite.objects.filter(active=False).exists()


def test_trial_sites_keep_their_names_and_cities_verbatim():
    load_protocol(RCT_FILE)

    sites = {s.code: (s.name, s.city, s.country, s.timezone) for s in Site.objects.all()}
    assert sites["BXP"] == (
        "Service de Rhumatologie, Hôpital Pellegrin-Tondu CHU de Bordeaux",
        "Bordeaux",
        "FR",
        "Europe/Paris",
    )
    assert sites["TOU"][:2] == ("Service de Médecine interne - CHU de Tours", "Tours")
    assert sites["NAN"][:2] == ("Service de Médecin interne - Hôpital central", "Nancy")
    assert sites["PER"][:2] == ("Service de Dermatologie - CHG Périgueux", "Perigueux")
    assert sorted(sites) == [
        "BXA",
        "BXP",
        "LIB",
        "LIM",
        "NAN",
        "PAR",
        "PER",
        "PES",
        "STR",
        "TLS",
        "TOU",
        "VAL",
    ]


def test_protocol_version_records_the_file_and_its_validated_definition():
    version = load_protocol(RCT_FILE).protocol_version

    version.refresh_from_db()
    assert version.version == "1.0"
    assert version.effective_date.isoformat() == "2026-01-01"
    assert version.source_path == "ecrf/studies/protocols/NCT00479934.yaml"
    assert version.sha256 == hashlib.sha256(RCT_FILE.read_bytes()).hexdigest()
    assert version.loaded_by is None
    assert version.protocol == read_protocol(RCT_FILE)
    assert version.study.current_protocol == version


def test_eligibility_texts_are_stored_verbatim():
    version = load_protocol(RCT_FILE).protocol_version
    version.refresh_from_db()

    texts = [c["text"] for c in version.definition["eligibility"]]
    assert "Severe cutaneous sclerodermia or systemic sclerodermia with m-Rodnan score > 20/51" in (
        texts
    )
    assert version.protocol.eligibility[11].text == (
        "Severe organ failure or anomaly of blood chemistry/hematology (bilirubin, SGOT, SGPT, "
        "creatinine > 1,5 \u00b4 upper normal limit, polymorphonuclear granulocytes less than "
        "1*10*9/l or platelets less than 50*10*9/l),"
    )


def test_load_is_audited_with_its_reason_and_user():
    user = UserFactory(username="admin")

    version = load_protocol(RCT_FILE, by=user).protocol_version

    (event,) = pghistory.models.Events.objects.tracks(version.study)
    assert event.pgh_label == "insert"
    assert event.pgh_context["reason"] == (f"load protocol {version.source_path} v1.0")
    assert event.pgh_context["user"] == user.pk
    assert version.loaded_by == user


# -- idempotence and versions -----------------------------------------------------------------


def test_loading_the_same_file_again_changes_nothing():
    first = load_protocol(RCT_FILE)
    before = counts()

    again = load_protocol(RCT_FILE)

    assert again.created is False
    assert again.protocol_version.pk == first.protocol_version.pk
    assert counts() == before


def test_file_changed_only_in_comments_counts_as_already_loaded(tmp_path):
    first = load_protocol(RCT_FILE)
    before = counts()
    commented = tmp_path / "NCT00479934.yaml"
    commented.write_bytes(RCT_FILE.read_bytes() + b"\n# reviewed by the sponsor\n")

    again = load_protocol(commented)

    assert again.created is False
    assert again.protocol_version.pk == first.protocol_version.pk
    assert counts() == before


def test_amendment_creates_a_new_version_and_keeps_the_first(variant):
    first = load_protocol(RCT_FILE).protocol_version
    patient = PatientFactory(
        study=first.study, site=Site.objects.get(code="BXP"), created_by=UserFactory()
    )

    second = load_protocol(variant(amendment))

    assert second.created is True
    assert list(first.study.protocol_versions.values_list("version", flat=True)) == ["1.0", "1.1"]
    first.refresh_from_db()
    assert first.protocol.visit("M1").earliest_day == 23
    assert second.protocol_version.protocol.visit("M1").earliest_day == 20
    assert first.study.current_protocol == second.protocol_version
    patient.refresh_from_db()
    assert patient.protocol_version == first


def test_amendment_stops_recruitment_at_dropped_sites_and_adds_new_ones(variant):
    load_protocol(RCT_FILE)

    def drop_libourne_add_bayonne(data):
        amendment(data)
        data["sites"] = [s for s in data["sites"] if s["code"] != "LIB"]
        data["sites"].append({"code": "BAY", "name": "Service de Dermatologie", "city": "Bayonne"})

    load_protocol(variant(drop_libourne_add_bayonne))

    links = dict(
        StudySite.objects.filter(study__code="NCT00479934").values_list("site__code", "active")
    )
    assert len(links) == 13
    assert links["LIB"] is False
    assert links["BAY"] is True
    assert links["BXP"] is True
    assert Site.objects.filter(code="LIB").exists()


def test_amendment_updates_the_study_description(variant):
    load_protocol(RCT_FILE)

    def retitle(data):
        amendment(data)
        data["study"]["target_enrolment"] = 34

    load_protocol(variant(retitle))

    assert Study.objects.get(code="NCT00479934").target_enrolment == 34


def test_an_amendment_cannot_unblind_the_study(variant):
    load_protocol(RCT_FILE)
    before = counts()

    def unblind(data):
        amendment(data)
        data["study"]["blinded"] = False

    with pytest.raises(ProtocolError) as refused:
        load_protocol(variant(unblind))
    assert "cannot unblind" in str(refused.value)
    assert Study.objects.get(code="NCT00479934").blinded is True
    assert counts() == before


def test_same_version_with_different_content_is_refused(variant):
    first = load_protocol(RCT_FILE).protocol_version
    before = counts()
    changed = variant(lambda d: d["visits"][2].update(window_after_days=10))

    with pytest.raises(ProtocolError) as excinfo:
        load_protocol(changed)

    assert str(excinfo.value) == (
        f"{changed}: version: version 1.0 of NCT00479934 is already loaded with different "
        "content; give the amendment a new version"
    )
    assert counts() == before
    first.refresh_from_db()
    assert first.protocol.visit("M1").latest_day == 37


def test_version_older_than_the_loaded_one_is_refused(variant):
    load_protocol(variant(amendment, name="v11.yaml"))

    with pytest.raises(ProtocolError, match="load versions in order"):
        load_protocol(RCT_FILE)

    assert list(ProtocolVersion.objects.values_list("version", flat=True)) == ["1.1"]


def test_broken_file_writes_nothing(variant):
    broken = variant(lambda d: d["visits"][3].update(code="M1"))

    with pytest.raises(ProtocolError, match=r"visits\[3\]\.code: duplicate visit code 'M1'"):
        load_protocol(broken)

    assert counts() == {"studies": 0, "sites": 0, "links": 0, "versions": 0, "events": 0}


def test_site_of_another_study_cannot_be_renamed_by_a_protocol(variant):
    load_protocol(COHORT_FILE)

    def claim_rennes(data):
        data["sites"].append({"code": "REN", "name": "CHU de Rennes", "city": "Rennes"})

    with pytest.raises(ProtocolError) as excinfo:
        load_protocol(variant(claim_rennes))

    assert str(excinfo.value).endswith(
        "sites[12]: site REN is already 'Rennes University Hospital' (Rennes) in NCT04206644; "
        "use the same name or another code"
    )
    assert not Study.objects.filter(code="NCT00479934").exists()
    assert Site.objects.get(code="REN").name == "Rennes University Hospital"


def test_site_shared_with_the_same_values_is_linked_to_both_studies(variant):
    load_protocol(COHORT_FILE)

    def add_rennes(data):
        data["sites"].append(
            {"code": "REN", "name": "Rennes University Hospital", "city": "Rennes"}
        )

    load_protocol(variant(add_rennes))

    assert sorted(Site.objects.get(code="REN").studies.values_list("code", flat=True)) == [
        "NCT00479934",
        "NCT04206644",
    ]


# -- the command ------------------------------------------------------------------------------


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command("load_protocol", *args, stdout=out, **options)
    return out.getvalue()


def test_command_loads_a_file_then_reports_it_already_loaded():
    assert run(str(RCT_FILE)) == "NCT00479934 v1.0 loaded (new version)\n"
    assert run(str(RCT_FILE)) == "NCT00479934 v1.0 already loaded, nothing to do\n"
    assert ProtocolVersion.objects.count() == 1


def test_command_all_loads_every_shipped_protocol():
    output = run(all=True)

    assert output == (
        "NCT00479934 v1.0 loaded (new version)\nNCT04206644 v1.0 loaded (new version)\n"
    )
    assert sorted(Study.objects.values_list("code", flat=True)) == ["NCT00479934", "NCT04206644"]


def test_command_refuses_a_bad_file_with_its_problem_and_status_1(variant):
    broken = variant(lambda d: d["visits"][2].update(window_before_days=-3))

    with pytest.raises(CommandError) as excinfo:
        run(str(broken))

    assert str(excinfo.value) == f"{broken}: visits[2].window_before_days: must be >= 0, not -3"
    assert excinfo.value.returncode == 1
    assert Study.objects.count() == 0


def test_command_loads_the_good_files_and_reports_the_bad_one(variant):
    broken = variant(lambda d: d["study"].pop("title"))

    with pytest.raises(CommandError, match="study.title: missing field"):
        run(str(COHORT_FILE), str(broken))

    assert list(Study.objects.values_list("code", flat=True)) == ["NCT04206644"]


def test_command_check_validates_without_writing(monkeypatch):
    monkeypatch.chdir(PROTOCOLS.parents[2])

    output = run(str(RCT_FILE), check=True)

    assert output == "ecrf/studies/protocols/NCT00479934.yaml: valid (NCT00479934 v1.0)\n"
    assert Study.objects.count() == 0


def test_command_records_who_loaded():
    user = UserFactory(username="datamanager")

    run(str(RCT_FILE), by="datamanager")

    assert ProtocolVersion.objects.get().loaded_by == user


def test_command_without_files_asks_for_them():
    with pytest.raises(CommandError, match="Give one or more protocol files, or --all"):
        run()
