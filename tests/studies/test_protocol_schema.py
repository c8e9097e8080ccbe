"""The protocol file schema: the shipped files validate, broken ones are refused precisely.

Broken variants are the real files loaded into a dict, changed in one place and written
to a temporary directory, so every case differs from a valid protocol by one mistake.
"""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import pydantic
import pytest
import yaml

from ecrf.studies.protocol import Protocol, ProtocolError, form_codes, read_protocol

PROTOCOLS = Path(__file__).resolve().parents[2] / "ecrf" / "studies" / "protocols"
RCT, COHORT = "NCT00479934", "NCT04206644"


def document(study: str = RCT) -> dict:
    return yaml.safe_load((PROTOCOLS / f"{study}.yaml").read_text(encoding="utf-8"))


@pytest.fixture
def broken(tmp_path, monkeypatch):
    """Write a changed copy of a shipped protocol as bad.yaml and return its problems."""
    monkeypatch.chdir(tmp_path)

    def problems(change, study: str = RCT) -> list[str]:
        data = copy.deepcopy(document(study))
        change(data)
        Path("bad.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        with pytest.raises(ProtocolError) as excinfo:
            read_protocol("bad.yaml")
        return str(excinfo.value).splitlines()

    return problems


@pytest.fixture
def refused(tmp_path, monkeypatch):
    """Problems of a file given as raw text."""
    monkeypatch.chdir(tmp_path)

    def problems(text: str) -> list[str]:
        Path("bad.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(ProtocolError) as excinfo:
            read_protocol("bad.yaml")
        return str(excinfo.value).splitlines()

    return problems


# -- the shipped files ------------------------------------------------------------------------


def test_trial_protocol_has_its_visits_in_order_with_their_windows():
    protocol = read_protocol(PROTOCOLS / f"{RCT}.yaml")

    timing = [(v.code, v.kind, v.target_day, v.earliest_day, v.latest_day) for v in protocol.visits]
    assert timing == [
        ("SCR", "scheduled", None, -28, -1),
        ("M0", "scheduled", 0, 0, 0),
        ("M1", "scheduled", 30, 23, 37),
        ("M3", "scheduled", 91, 77, 105),
        ("M6", "scheduled", 182, 168, 196),
        ("M12", "scheduled", 365, 335, 395),
        ("UNS", "unscheduled", None, None, None),
    ]
    assert protocol.day0_visit.code == "M0"
    assert [v.code for v in protocol.scheduled_visits()] == ["SCR", "M0", "M1", "M3", "M6", "M12"]
    assert protocol.visit("UNS").repeatable is True


def test_trial_protocol_lists_the_forms_of_each_visit():
    protocol = read_protocol(PROTOCOLS / f"{RCT}.yaml")

    assert {v.code: v.form_codes for v in protocol.visits} == {
        "SCR": (
            "demographics",
            "consent",
            "medical_history",
            "mrss",
            "echocardiography",
            "safety_labs",
            "pregnancy_test",
            "eligibility",
        ),
        "M0": ("mrss", "skin_biopsy", "dlqi", "haq", "safety_labs", "drug_dispensing"),
        "M1": ("mrss", "dlqi", "haq", "safety_labs", "drug_accountability"),
        "M3": ("mrss", "dlqi", "haq", "safety_labs", "drug_accountability"),
        "M6": ("mrss", "skin_biopsy", "dlqi", "haq", "safety_labs", "drug_accountability"),
        "M12": ("mrss", "dlqi", "haq"),
        "UNS": ("safety_labs", "mrss"),
    }
    pregnancy = next(f for f in protocol.visit("SCR").forms if f.form == "pregnancy_test")
    assert pregnancy.condition == "female_childbearing_potential"
    assert [f.code for f in protocol.per_patient_forms()] == ["adverse_event"]


def test_trial_protocol_declares_arms_randomisation_and_project_decisions():
    protocol = read_protocol(PROTOCOLS / f"{RCT}.yaml")

    assert protocol.arm_codes == ("IMA", "PBO")
    assert protocol.group_codes == ()
    assert protocol.randomisation.block_sizes == (2, 4)
    assert protocol.randomisation.stratify_by == ("site",)
    assert protocol.randomisation.ratio == {"IMA": 1, "PBO": 1}
    assert protocol.study.blinded is True
    assert protocol.study.target_enrolment == 28
    assert protocol.safety.sae_report_deadline_hours == 24
    assert protocol.safety.lab_alerts["platelets_x10e9_l"].below == 50
    assert protocol.safety.lab_alerts["alt_u_l"].above_uln_ratio == 1.5
    reminders = protocol.reminders
    assert (reminders.window_opens_in_days, reminders.days_before_target) == ((7, 0), (0,))
    assert (reminders.window_closes_in_days, reminders.overdue_repeat_days) == ((3,), 7)
    assert reminders.pregnancy_test.days_before_inclusion == 7
    assert reminders.send_time.isoformat() == "08:00:00"


def test_trial_eligibility_is_verbatim_with_its_automatic_checks():
    protocol = read_protocol(PROTOCOLS / f"{RCT}.yaml")
    criteria = {c.id: c for c in protocol.eligibility}

    assert [c.kind for c in protocol.eligibility].count("inclusion") == 8
    assert [c.kind for c in protocol.eligibility].count("exclusion") == 13
    assert criteria["I5"].text == (
        "Woman with efficient contraceptive method during trail treatment and during "
        "3 month after the end of trial treatment"
    )
    assert criteria["E7"].text == "myocardial infarction of less than 6 mois at pre inclusion visit"
    assert criteria["E3"].text == 'Scleroderma " en coup de sabre "'
    assert "creatinine > 1,5 \u00b4 upper normal limit" in criteria["E4"].text
    assert criteria["E6"].text.startswith("Ejection fraction \u2264 45 per cent")
    checks = {
        cid: [c.model_dump(exclude={"groups"}) for c in criterion.checks]
        for cid, criterion in criteria.items()
        if criterion.checks
    }
    assert checks == {
        "I1": [{"rule": "age_at_consent_min", "years": 18}],
        "I3": [{"rule": "mrss_total_gt", "visit": "SCR", "value": 20}],
        "I4": [{"rule": "lvef_gt", "value": 45.0}],
        "I6": [{"rule": "pregnancy_test_negative_within_days", "days": 7}],
        "E4": [
            {
                "rule": "labs_max_uln_ratio",
                "analytes": ("bilirubin_umol_l", "ast_u_l", "alt_u_l", "creatinine_umol_l"),
                "ratio": 1.5,
            },
            {"rule": "labs_min", "limits": {"neutrophils_x10e9_l": 1.0, "platelets_x10e9_l": 50}},
        ],
        "E6": [{"rule": "lvef_gt", "value": 45.0}],
        "E7": [
            {
                "rule": "no_event_within",
                "field": "medical_history.mi_date",
                "months": 6,
                "days": None,
            }
        ],
        "E9": [
            {
                "rule": "no_event_within",
                "field": "medical_history.major_surgery_date",
                "months": None,
                "days": 14,
            }
        ],
    }
    assert criteria["I1"].expected_answer is True
    assert criteria["E6"].expected_answer is False


def test_cohort_forms_and_eligibility_depend_on_the_group():
    protocol = read_protocol(PROTOCOLS / f"{COHORT}.yaml")

    def forms(group):
        return [f.form for f in protocol.forms_for_visit("V0", group)]

    assert protocol.group_codes == ("SSC", "SLE", "HD")
    assert protocol.arms == () and protocol.randomisation is None
    assert forms("HD") == ["demographics", "consent", "eligibility", "safety_labs", "blood_sample"]
    assert "ssc_classification" in forms("SSC") and "sle_classification" not in forms("SSC")
    assert "sle_classification" in forms("SLE") and "clinical_characteristics" in forms("SLE")
    assert len(forms(None)) == 8
    assert protocol.visit("LAB").after_visit == "V0"
    assert protocol.visit("LAB").earliest_day is None
    assert [c.id for c in protocol.eligibility_for("HD")] == ["I2", "E1", "E2"]
    assert [c.id for c in protocol.eligibility_for("SSC")] == ["I1", "I2", "E1", "E2"]
    inclusion = protocol.eligibility[0]
    assert [(c.form, c.groups) for c in inclusion.checks] == [
        ("ssc_classification", ("SSC",)),
        ("sle_classification", ("SLE",)),
    ]
    assert protocol.eligibility[3].text == "patients with anemia inferior to 7g/dL"
    assert protocol.eligibility[3].checks[0].limits == {"hemoglobin_g_dl": 7}


@pytest.mark.parametrize("study", [RCT, COHORT])
def test_stored_definition_validates_back_to_the_same_protocol(study):
    protocol = read_protocol(PROTOCOLS / f"{study}.yaml")

    assert Protocol.model_validate(protocol.model_dump(mode="json")) == protocol
    assert protocol.model_dump(mode="json")["effective_date"] == "2026-01-01"


def test_protocol_cannot_be_changed_once_validated():
    protocol = read_protocol(PROTOCOLS / f"{RCT}.yaml")

    with pytest.raises(pydantic.ValidationError):
        protocol.version = "9.9"


def test_unknown_visit_code_is_a_key_error():
    protocol = read_protocol(PROTOCOLS / f"{RCT}.yaml")

    with pytest.raises(KeyError, match="has no visit 'M2'"):
        protocol.visit("M2")


# -- refused files ----------------------------------------------------------------------------


def test_unknown_form_is_refused_with_its_place(broken):
    problems = broken(lambda d: d["visits"][1]["forms"][0].update(form="mrsss"))

    assert problems == [
        "bad.yaml: visits[1].forms[0].form: unknown form 'mrsss', did you mean 'mrss'? "
        f"(known: {', '.join(sorted(form_codes()))})"
    ]


def test_form_missing_from_the_study_catalogue_is_an_unknown_form(broken):
    problems = broken(lambda d: d["visits"][6]["forms"].append({"form": "blood_sample"}))

    assert len(problems) == 1
    assert problems[0].startswith(
        "bad.yaml: visits[6].forms[2].form: unknown form 'blood_sample': "
        "not in this study's forms (demographics, consent,"
    )


def test_duplicate_visit_code_is_refused_with_its_place(broken):
    problems = broken(lambda d: d["visits"][3].update(code="M1"))

    assert problems == ["bad.yaml: visits[3].code: duplicate visit code 'M1' (first at visits[2])"]


def test_overlapping_windows_are_refused(broken):
    problems = broken(lambda d: d["visits"][3].update(target_day=45, window_before_days=20))

    assert problems == ["bad.yaml: visits[3]: window of M3 (days 25..59) overlaps M1 (days 23..37)"]


def test_scheduled_visits_out_of_order_are_refused(broken):
    problems = broken(lambda d: d["visits"].insert(1, d["visits"].pop(2)))

    assert problems == [
        "bad.yaml: visits[2]: M0 (days 0..0) comes before M1 (days 23..37): "
        "list scheduled visits in chronological order"
    ]


def test_negative_window_is_refused(broken):
    problems = broken(lambda d: d["visits"][2].update(window_before_days=-3))

    assert problems == ["bad.yaml: visits[2].window_before_days: must be >= 0, not -3"]


def test_missing_field_is_refused(broken):
    problems = broken(lambda d: d["study"].pop("title"))

    assert problems == ["bad.yaml: study.title: missing field"]


def test_unknown_key_is_refused(broken):
    problems = broken(lambda d: d["visits"][2].update(window_after=7))

    assert problems == ["bad.yaml: visits[2].window_after: unknown field"]


def test_duplicate_site_code_is_refused(broken):
    problems = broken(lambda d: d["sites"][5].update(code="BXP"))

    assert problems == ["bad.yaml: sites[5].code: duplicate site code 'BXP' (first at sites[4])"]


def test_eligibility_check_with_unknown_rule_is_refused(broken):
    problems = broken(lambda d: d["eligibility"][0]["checks"][0].update(rule="age_min"))

    assert problems == [
        "bad.yaml: eligibility[0].checks[0].rule: unknown rule 'age_min' (known: "
        "age_at_consent_min, classification_met, labs_max_uln_ratio, labs_min, lvef_gt, "
        "mrss_total_gt, no_event_within, pregnancy_test_negative_within_days)"
    ]


def test_eligibility_check_with_a_bad_parameter_names_the_parameter(broken):
    problems = broken(lambda d: d["eligibility"][2]["checks"][0].update(value=60))

    assert problems == ["bad.yaml: eligibility[2].checks[0].value: must be <= 51, not 60"]


def test_check_on_a_visit_without_the_form_it_reads_is_refused(broken):
    def drop_screening_mrss(d):
        d["visits"][0]["forms"] = [f for f in d["visits"][0]["forms"] if f["form"] != "mrss"]

    problems = broken(drop_screening_mrss)

    assert problems == ["bad.yaml: eligibility[2].checks[0].visit: visit SCR has no 'mrss' form"]


def test_check_on_an_unknown_visit_is_refused(broken):
    problems = broken(lambda d: d["eligibility"][2]["checks"][0].update(visit="M9"))

    assert problems == ["bad.yaml: eligibility[2].checks[0].visit: unknown visit 'M9'"]


def test_check_reading_a_form_the_study_does_not_use_is_refused(broken):
    problems = broken(
        lambda d: d["eligibility"][1].update(
            checks=[{"rule": "classification_met", "form": "ssc_classification"}]
        )
    )

    assert problems == [
        "bad.yaml: eligibility[1].checks[0]: rule classification_met reads the "
        "'ssc_classification' form, which is not in this study's forms"
    ]


def test_reference_to_an_undefined_group_is_refused(broken):
    problems = broken(lambda d: d["visits"][0]["forms"][4].update(groups=["SCC"]), COHORT)

    assert problems == [
        "bad.yaml: visits[0].forms[4].groups[0]: unknown group 'SCC': "
        "not a group of this study (groups: SSC, SLE, HD)"
    ]


def test_group_reference_in_a_study_without_groups_is_refused(broken):
    problems = broken(lambda d: d["eligibility"][0].update(groups=["SSC"]))

    assert problems == [
        "bad.yaml: eligibility[0].groups[0]: unknown group 'SSC': "
        "not a group of this study (it has no groups)"
    ]


def test_follow_on_visit_after_an_unknown_visit_is_refused(broken):
    problems = broken(lambda d: d["visits"][1].update(after_visit="V1"), COHORT)

    assert problems == ["bad.yaml: visits[1].after_visit: unknown visit 'V1'"]


def test_study_without_a_day0_visit_is_refused(broken):
    problems = broken(lambda d: d["visits"][1].update(target_day=1))

    assert problems == [
        "bad.yaml: visits: no visit defines day 0: the inclusion visit needs target_day: 0"
    ]


def test_study_with_both_arms_and_groups_is_refused(broken):
    problems = broken(lambda d: d.update(groups=[{"code": "SSC", "label": "SSc"}]))

    assert problems == ["bad.yaml: groups: a study has arms or groups, not both"]


def test_randomisation_ratio_must_name_the_arms(broken):
    problems = broken(lambda d: d["randomisation"].update(ratio={"IMA": 1, "PLA": 1}))

    assert problems == [
        "bad.yaml: randomisation.ratio: the ratio must give every arm (IMA, PBO) "
        "and only them, not IMA, PLA"
    ]


def test_unquoted_version_is_refused_because_yaml_reads_it_as_a_number(broken):
    problems = broken(lambda d: d.update(version=1.1))

    assert problems == [
        'bad.yaml: version: write the version in quotes (version: "1.1"), '
        "so that 1.10 is not read as 1.1"
    ]


def test_every_problem_of_a_file_is_reported_at_once(broken):
    def two_mistakes(d):
        d["visits"][1]["forms"][0]["form"] = "mrsss"
        d["sites"][0]["city"] = ""

    problems = broken(two_mistakes)

    assert [line.split(": ")[1] for line in problems] == [
        "sites[0].city",
        "visits[1].forms[0].form",
    ]


def test_yaml_syntax_error_names_the_line(refused):
    problems = refused("study:\n  code: NCT00479934\n  title: [unclosed\nversion: '1.0'\n")

    assert len(problems) == 1
    assert problems[0].startswith("bad.yaml: line 4, column 8: YAML syntax: ")


def test_key_given_twice_is_refused_with_its_line(refused):
    problems = refused("study:\n  code: NCT00479934\n  code: NCT04206644\n")

    assert problems == ["bad.yaml: line 3, column 3: YAML syntax: found duplicate key 'code'"]


def test_empty_file_is_refused(refused):
    assert refused("# nothing but a comment\n") == ["bad.yaml: the file is empty"]


def test_file_that_is_not_a_mapping_is_refused(refused):
    assert refused("- study\n- version\n") == [
        "bad.yaml: the file must be a mapping of sections (study:, version:, sites:, ...), "
        "not ['study', 'version']"
    ]


def test_missing_file_is_refused_with_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ProtocolError) as excinfo:
        read_protocol("nowhere.yaml")

    assert str(excinfo.value) == "nowhere.yaml: cannot read the file: No such file or directory"


def test_error_names_a_file_outside_the_working_directory_as_given(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "p.yaml").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path / "b")

    with pytest.raises(ProtocolError) as excinfo:
        read_protocol(tmp_path / "a" / "p.yaml")

    assert str(excinfo.value) == f"{tmp_path / 'a' / 'p.yaml'}: the file is empty"
    assert excinfo.value.problems == (("", "the file is empty"),)


def test_effective_date_must_be_a_date(broken):
    problems = broken(lambda d: d.update(effective_date="2026-13-01"))

    assert problems == ["bad.yaml: effective_date: must be a date (YYYY-MM-DD), not '2026-13-01'"]
    assert isinstance(document()["effective_date"], date)


# -- the laboratory section --------------------------------------------------------------------


def test_cohort_laboratory_section_is_read_as_written():
    laboratory = read_protocol(PROTOCOLS / f"{COHORT}.yaml").laboratory

    assert laboratory.conditions_for("SSC") == ("untreated", "ruxolitinib")
    assert laboratory.conditions_for("HD") == ("hd_serum_untreated", "hd_serum_ruxolitinib")
    assert laboratory.conditions_for(None) == ()
    assert laboratory.serum_donor_groups == ("SSC",)
    assert laboratory.culture_min_days == 1


def test_laboratory_condition_for_an_unknown_group_is_refused(broken):
    def change(d):
        d["laboratory"]["conditions"]["SCC"] = ["untreated"]

    assert broken(change, COHORT) == [
        "bad.yaml: laboratory.conditions.SCC: unknown group 'SCC': "
        "not a group of this study (groups: SSC, SLE, HD)"
    ]


def test_laboratory_condition_listed_twice_is_refused(broken):
    def change(d):
        d["laboratory"]["conditions"]["SLE"] = ["untreated", "untreated"]

    (problem,) = broken(change, COHORT)
    assert problem.startswith("bad.yaml: laboratory")
    assert "'untreated' is listed twice" in problem


def test_laboratory_unknown_condition_code_is_refused(broken):
    def change(d):
        d["laboratory"]["conditions"]["SLE"] = ["untreated", "tofacitinib"]

    assert broken(change, COHORT) == [
        "bad.yaml: laboratory.conditions.SLE[1]: unknown culture condition 'tofacitinib', "
        "did you mean 'ruxolitinib'? "
        "(known: hd_serum_ruxolitinib, hd_serum_untreated, ruxolitinib, untreated)"
    ]


def test_serum_conditions_need_the_serum_donor_groups(broken):
    assert broken(lambda d: d["laboratory"].pop("serum_donor_groups"), COHORT) == [
        "bad.yaml: laboratory.serum_donor_groups: group HD uses serum conditions: "
        "name the serum donors' groups"
    ]


def test_serum_donor_group_must_be_a_group_of_the_study(broken):
    assert broken(lambda d: d["laboratory"].update(serum_donor_groups=["SLX"]), COHORT) == [
        "bad.yaml: laboratory.serum_donor_groups[0]: unknown group 'SLX': "
        "not a group of this study (groups: SSC, SLE, HD)"
    ]


def test_negative_culture_time_is_refused(broken):
    (problem,) = broken(lambda d: d["laboratory"].update(culture_min_days=-1), COHORT)
    assert problem.startswith("bad.yaml: laboratory.culture_min_days")


def test_laboratory_section_without_a_culture_form_is_refused(broken):
    def change(d):
        d["laboratory"] = {"conditions": {}, "culture_min_days": 1}

    assert broken(change) == [
        "bad.yaml: laboratory: a laboratory section needs a culture form (mdm_cytokines, mdm_flow)"
    ]
