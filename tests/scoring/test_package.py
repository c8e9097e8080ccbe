"""The scoring package: public names and purity (standard library only)."""

import ast
import sys
from pathlib import Path

import pytest

import ecrf.scoring
from ecrf.scoring import ScoringInputError, dlqi, haq, mrss, sle2019, ssc2013

PACKAGE_DIR = Path(ecrf.scoring.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.partition(".")[0])
    return names


def test_the_package_imports_only_the_standard_library_and_itself():
    sources = sorted(PACKAGE_DIR.glob("*.py"))
    assert len(sources) >= 7
    third_party = {
        (path.name, name)
        for path in sources
        for name in imported_modules(path)
        if name not in sys.stdlib_module_names
    }
    assert third_party == set()


def test_the_package_exports_the_five_instruments_and_the_error():
    modules = {name: getattr(ecrf.scoring, name) for name in ecrf.scoring.__all__}
    assert [module.score for module in (dlqi, haq, mrss, sle2019, ssc2013)] == [
        modules[name].score for name in ("dlqi", "haq", "mrss", "sle2019", "ssc2013")
    ]
    assert set(ecrf.scoring.__all__) == {
        "ScoringInputError",
        "dlqi",
        "haq",
        "mrss",
        "sle2019",
        "ssc2013",
    }
    assert issubclass(ScoringInputError, ValueError)


def test_the_error_keeps_instrument_key_and_allowed_values_as_attributes():
    with pytest.raises(ScoringInputError) as excinfo:
        dlqi.score({"q2": "NR"})
    error = excinfo.value
    assert (error.instrument, error.key, error.value) == ("dlqi", "q2", "NR")
    assert error.allowed.startswith("'very_much'")
