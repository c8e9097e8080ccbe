"""One registry of forms: the models declare their codes, the protocol files use them, and a
system check says when the two disagree, either way."""

from __future__ import annotations

from pathlib import Path

import yaml

from ecrf.crfs.checks import check_form_registry, form_models, registry_problems
from ecrf.crfs.models import CRF_MODELS, FORM_MODELS
from ecrf.safety.models import AdverseEvent
from ecrf.studies.loader import protocol_files
from ecrf.studies.protocol import form_codes

RCT = Path(__file__).resolve().parents[2] / "ecrf" / "studies" / "protocols" / "NCT00479934.yaml"


def test_the_shipped_protocols_and_the_models_agree():
    assert check_form_registry() == []


def test_the_registry_is_every_crf_model_and_the_adverse_event_log():
    assert set(form_models()) == {*CRF_MODELS, AdverseEvent}
    assert form_codes() == {*FORM_MODELS, "adverse_event"}
    assert len(CRF_MODELS) == len(FORM_MODELS) == 19


class Unnamed:
    __name__ = "Unnamed"
    FORM_CODE = ""


class Twin:
    __name__ = "Twin"
    FORM_CODE = "mrss"


class Unused:
    __name__ = "Unused"
    FORM_CODE = "nailfold_capillaroscopy"


def ids(problems) -> list[str]:
    return [problem.id for problem in problems]


def test_a_model_without_a_code_or_with_another_models_code_is_an_error():
    problems = registry_problems([*form_models(), Unnamed, Twin], protocol_files())
    assert ids(problems) == ["crfs.E001", "crfs.E002"]
    assert problems[1].msg == "2 models declare the form code 'mrss'."


def test_a_model_no_protocol_file_uses_is_an_error():
    problems = registry_problems([*form_models(), Unused], protocol_files())
    assert ids(problems) == ["crfs.E004"]
    assert problems[0].msg == ("No protocol file uses the form 'nailfold_capillaroscopy' (Unused).")


def test_a_protocol_file_naming_a_form_no_model_implements_is_an_error(tmp_path):
    data = yaml.safe_load(RCT.read_text())
    data["forms"].append({"code": "nailfold_capillaroscopy", "label": "Capillaroscopy"})
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data, allow_unicode=True))
    problems = registry_problems(form_models(), [broken])
    assert ids(problems) == ["crfs.E003"]
    assert "unknown form 'nailfold_capillaroscopy'" in problems[0].msg
