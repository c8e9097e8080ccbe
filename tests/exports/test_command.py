"""`manage.py export`: the service from the command line, its errors as messages."""

from __future__ import annotations

from io import StringIO

import pandas
import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from ecrf.crfs.models import Mrss
from ecrf.exports.models import ExportRecord

RCT = "NCT00479934"


def export(*arguments) -> str:
    out = StringIO()
    with translation.override("en"):
        call_command("export", *arguments, stdout=out)
    return out.getvalue()


def test_the_command_exports_and_says_what_it_wrote(seeded, tmp_path):
    output = export(
        "--study",
        RCT,
        "--format",
        "csv",
        "--out",
        str(tmp_path),
        "--user",
        "datamanager",
        "--form",
        "mrss",
        "--site",
        "BXP",
    )
    rows = Mrss.objects.filter(patient__study__code=RCT, patient__site__code="BXP").count()
    assert f"Exported {RCT} (blinded) into {tmp_path}:" in output
    assert f"  csv/mrss.csv: {rows} rows" in output
    assert len(pandas.read_csv(tmp_path / "csv" / "mrss.csv")) == rows
    record = ExportRecord.objects.get()
    assert f"manifest.json: sha256 {record.manifest_sha256}" in output
    assert record.forms == ["mrss"] and record.sites == ["BXP"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--study", "NCT00000000"], "Study: NCT00000000 is unknown; choose among NCT"),
        (["--study", RCT, "--format", "sas"], "Format: sas is not supported yet; choose csv"),
        (["--study", RCT, "--form", "x"], "Form: x is not a form this study exports"),
        (["--study", RCT, "--as-of", "yesterday"], "Cut-off: yesterday is not a date and time"),
        (["--study", RCT, "--unblinded"], "Unblinded: you do not see the allocation"),
        (["--study", RCT, "--user", "monitor.bordeaux"], "Your role does not allow you to"),
        (["--study", RCT, "--user", "nobody"], "User: nobody is not an active account."),
        (["--study", RCT, "--out", "/"], "Folder: / is not an empty folder"),
    ],
)
def test_errors_are_messages_not_tracebacks(seeded, tmp_path, arguments, message):
    if "--user" not in arguments:
        arguments = [*arguments, "--user", "datamanager"]
    with pytest.raises(CommandError) as refused:
        export(*arguments, *([] if "--out" in arguments else ["--out", str(tmp_path / "o")]))
    assert message in str(refused.value)
    assert not (tmp_path / "o").exists()
    assert not ExportRecord.objects.exists()
