"""The ODM snapshot read by several connections at once is the one read by one.

An export that runs in a transaction of its own exports its snapshot, and the ODM writer
deals its datasets out to more connections that import it (sql_text.reader_connections);
inside a caller's transaction (every test of tests/exports) it reads on its own
connection. Transactional, like the rest of this folder: the demo is committed, so that
the other connections see it.
"""

from __future__ import annotations

import re

import pytest
from django.db import transaction

from ecrf.exports import sql_text
from ecrf.exports.services import export_run
from ecrf.studies.models import Study
from tests.exports_as_of.test_past_cut_off import RCT, demo, user  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

# What differs between two exports of the same data: the file's identity and instants.
_FILE_STAMP = re.compile(r' (FileOID|CreationDateTime|AsOfDateTime)="[^"]*"')


def snapshot(folder) -> str:
    text = (folder / "odm" / f"{RCT}_snapshot.xml").read_text(encoding="utf-8")
    return _FILE_STAMP.sub("", text)


def test_the_snapshot_read_by_several_connections_is_the_one_read_by_one(
    demo,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    study, admin = Study.objects.get(code=RCT), user("admin")
    opened = []
    real = sql_text.reader_connections

    def counted(count):
        manager = real(count)

        class Counting:
            def __enter__(self):
                readers = manager.__enter__()
                opened.append(len(readers))
                return readers

            def __exit__(self, *exc):
                return manager.__exit__(*exc)

        return Counting()

    # Three connections whatever the machine's processors, through the writer's own call.
    monkeypatch.setattr("ecrf.exports.writers.odm.readers_wanted", lambda: 3)
    monkeypatch.setattr("ecrf.exports.writers.odm.reader_connections", counted)

    export_run(study=study, by=admin, formats=("odm",), unblinded=True, out_dir=tmp_path / "many")
    with transaction.atomic():
        export_run(
            study=study, by=admin, formats=("odm",), unblinded=True, out_dir=tmp_path / "one"
        )

    assert opened == [2, 0]
    many, one = snapshot(tmp_path / "many"), snapshot(tmp_path / "one")
    assert many.count("<ItemGroupData ") > 100
    assert "<AuditRecord>" in many
    assert many == one
