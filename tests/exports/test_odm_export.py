"""The CDISC ODM 1.3.2 exports of the seeded studies: both files valid against the CDISC
schema, their ItemData, AuditRecords and Signatures compared with the database; blinding;
the manifest; the audit file's period."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from lxml import etree

from ecrf.crfs.models import MdmCytokines, Mrss
from ecrf.exports.services import export_run
from ecrf.patients.models import Allocation
from ecrf.review.models import Signature
from ecrf.safety.models import AdverseEvent
from ecrf.studies.models import Study

RCT, COHORT = "NCT00479934", "NCT04206644"
SCHEMA_PATH = Path("/work/shared/reference/odm-1.3.2/ODM1-3-2.xsd")
NS = {"o": "http://www.cdisc.org/ns/odm/v1.3"}
LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@pytest.fixture(scope="module")
def schema():
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def user(username):
    return get_user_model().objects.get(username=username)


def valid(schema, path) -> etree._ElementTree:
    document = etree.parse(str(path))
    assert schema.validate(document), [str(error) for error in schema.error_log][:5]
    return document


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def item(document, subject, event, form, oid):
    """The ItemData elements of one item for a subject's study event and form."""
    return document.xpath(
        "//o:SubjectData[@SubjectKey=$s]/o:StudyEventData[@StudyEventOID=$e]"
        "/o:FormData[@FormOID=$f]/o:ItemGroupData/o:ItemData[@ItemOID=$i]",
        namespaces=NS,
        s=subject,
        e=f"SE.{event}",
        f=f"F.{form}",
        i=oid,
    )


@pytest.fixture
def rct(seeded):
    return Study.objects.get(code=RCT)


@pytest.fixture
def cohort(seeded):
    return Study.objects.get(code=COHORT)


@pytest.fixture
def rct_odm(rct, tmp_path, schema):
    record = export_run(
        study=rct, by=user("datamanager"), formats=["odm", "odm-audit"], out_dir=tmp_path
    )
    snapshot = valid(schema, tmp_path / "odm" / f"{RCT}_snapshot.xml")
    audit = valid(schema, tmp_path / "odm-audit" / f"{RCT}_audit.xml")
    return record, snapshot, audit


def test_the_snapshot_describes_the_study_and_holds_its_values(rct, rct_odm):
    _record, document, _audit = rct_odm
    root = document.getroot()
    assert root.get("FileType") == "Snapshot" and root.get("ODMVersion") == "1.3.2"
    assert root.get("FileOID") and root.get("Granularity") == "All"
    created = instant(root.get("CreationDateTime"))
    assert created.utcoffset() == timedelta(0)
    variables = root.find("o:Study/o:GlobalVariables", NS)
    assert variables.findtext("o:StudyName", namespaces=NS) == rct.acronym
    assert variables.findtext("o:StudyDescription", namespaces=NS) == rct.title
    assert variables.findtext("o:ProtocolName", namespaces=NS) == rct.code
    versions = root.findall("o:Study/o:MetaDataVersion", NS)
    assert [v.get("OID") for v in versions] == [
        f"MDV.{version}" for version in rct.protocol_versions.values_list("version", flat=True)
    ]
    mdv = versions[-1]
    # The visit windows, in our namespace's aliases: M3 is day 91 ± 14.
    m3 = mdv.find("o:StudyEventDef[@OID='SE.M3']", NS)
    aliases = {a.get("Context"): a.get("Name") for a in m3.findall("o:Alias", NS)}
    assert aliases == {"ecrf:TargetDay": "91", "ecrf:EarliestDay": "77", "ecrf:LatestDay": "105"}
    assert root.nsmap["ecrf"] == "https://ecrf.example/odm-extension/1"
    unscheduled = mdv.find("o:StudyEventDef[@OID='SE.UNS']", NS)
    assert unscheduled.get("Repeating") == "Yes" and unscheduled.get("Type") == "Unscheduled"
    # Types, lengths, units, ranges and code lists with both languages.
    sex = mdv.find("o:ItemDef[@OID='I.demographics.sex']", NS)
    assert sex.find("o:CodeListRef", NS).get("CodeListOID") == "CL.demographics.sex"
    decodes = mdv.findall("o:CodeList[@OID='CL.demographics.sex']/o:CodeListItem/o:Decode", NS)
    assert decodes and all(
        {t.get(LANG) for t in d.findall("o:TranslatedText", NS)} == {"en", "fr"} for d in decodes
    )
    question = sex.findall("o:Question/o:TranslatedText", NS)
    assert {t.get(LANG): t.text for t in question} == {"en": "Sex", "fr": "Sexe"}
    total = mdv.find("o:ItemDef[@OID='I.mrss.total']", NS)
    assert total.get("DataType") == "integer"
    hemoglobin = mdv.find("o:ItemDef[@OID='I.safety_labs.hemoglobin_g_dl']", NS)
    assert hemoglobin.get("DataType") == "float" and hemoglobin.get("SignificantDigits")
    assert mdv.find("o:ItemDef[@OID='I.adverse_event.onset_date']", NS).get("DataType") == (
        "partialDate"
    )
    assert mdv.find("o:ItemGroupDef[@OID='IG.adverse_event']", NS).get("Repeating") == "Yes"
    units = root.findall("o:Study/o:BasicDefinitions/o:MeasurementUnit", NS)
    assert units
    for ref in mdv.iterfind(".//o:MeasurementUnitRef", NS):
        assert ref.get("MeasurementUnitOID") in {unit.get("OID") for unit in units}
    # A derived score as the database holds it, visit by visit.
    for mrss in Mrss.objects.filter(patient__study=rct).select_related("patient", "visit"):
        found = item(document, mrss.patient.subject_code, mrss.visit.code, "mrss", "I.mrss.total")
        assert [data.get("Value") for data in found] == [str(mrss.total)]
    # A missing value has no ItemData at all.
    blank = Mrss.objects.filter(patient__study=rct, assessor="").select_related("patient", "visit")
    missing = Mrss.objects.filter(patient__study=rct, not_assessable_reason="").first()
    assert missing is not None
    assert not item(
        document,
        missing.patient.subject_code,
        missing.visit.code,
        "mrss",
        "I.mrss.not_assessable_reason",
    )
    for mrss in blank:
        assert not item(
            document, mrss.patient.subject_code, mrss.visit.code, "mrss", "I.mrss.assessor"
        )
    # The French verbatim and its month-only onset, in the per-patient log.
    nausea = AdverseEvent.objects.get(patient__study=rct, term__startswith="Nausées")
    assert nausea.term == "Nausées après les prises, sensation de réplétion gastrique"
    groups = document.xpath(
        "//o:SubjectData[@SubjectKey=$s]/o:StudyEventData[@StudyEventOID='SE.PER_PATIENT']"
        "/o:FormData[@FormOID='F.adverse_event']/o:ItemGroupData[@ItemGroupRepeatKey=$n]",
        namespaces=NS,
        s=nausea.patient.subject_code,
        n=str(nausea.number),
    )
    assert len(groups) == 1
    values = {d.get("ItemOID"): d.get("Value") for d in groups[0].findall("o:ItemData", NS)}
    assert values["I.adverse_event.term"] == nausea.term
    assert re.fullmatch(r"\d{4}-\d{2}", values["I.adverse_event.onset_date"])
    assert values["I.adverse_event.onset_date"] == nausea.onset_date
    assert values["I.adverse_event.serious"] == "false"
    assert "I.adverse_event.end_date" not in values
    # Every subject once, at their site.
    subjects = root.findall("o:ClinicalData/o:SubjectData", NS)
    keys = [s.get("SubjectKey") for s in subjects]
    assert len(keys) == len(set(keys))
    sites = {s.get("SubjectKey"): s.find("o:SiteRef", NS).get("LocationOID") for s in subjects}
    assert sites[nausea.patient.subject_code] == f"LOC.{nausea.patient.site.code}"
    locations = {loc.get("OID") for loc in root.findall("o:AdminData/o:Location", NS)}
    assert set(sites.values()) <= locations


def test_a_corrected_value_carries_its_audit_record(rct, rct_odm):
    _record, document, _audit = rct_odm
    events = Mrss.pgh_event_model.objects.filter(
        pgh_label="update", pgh_context__reason__startswith="Transcription error"
    )
    event = events.get(pgh_obj__patient__study=rct)
    mrss = Mrss.objects.select_related("patient__site", "visit").get(pk=event.pgh_obj_id)
    before = (
        Mrss.pgh_event_model.objects.filter(pgh_obj_id=mrss.pk, pgh_id__lt=event.pgh_id)
        .order_by("-pgh_id")
        .first()
    )
    assert before.face != event.face == mrss.face
    [data] = item(document, mrss.patient.subject_code, mrss.visit.code, "mrss", "I.mrss.face")
    assert data.get("Value") == str(mrss.face)
    record = data.find("o:AuditRecord", NS)
    by = get_user_model().objects.get(pk=event.pgh_context["user"])
    assert record.find("o:UserRef", NS).get("UserOID") == f"USR.{by.username}"
    assert record.find("o:LocationRef", NS).get("LocationOID") == f"LOC.{mrss.patient.site.code}"
    stamp = instant(record.findtext("o:DateTimeStamp", namespaces=NS))
    assert stamp == event.pgh_created_at and stamp.utcoffset() == timedelta(0)
    assert record.findtext("o:ReasonForChange", namespaces=NS) == event.pgh_context["reason"]
    # An unchanged answer of the same form has none.
    [area] = item(document, mrss.patient.subject_code, mrss.visit.code, "mrss", "I.mrss.abdomen")
    assert area.find("o:AuditRecord", NS) is None
    # The users the records name are defined, with their login and no more than a name.
    users = {u.get("OID"): u for u in document.getroot().findall("o:AdminData/o:User", NS)}
    person = users[f"USR.{by.username}"]
    assert person.findtext("o:LoginName", namespaces=NS) == by.username
    assert [child.tag.split("}")[1] for child in person] in (
        ["LoginName"],
        ["LoginName", "FullName"],
    )
    created = instant(document.getroot().get("CreationDateTime"))
    stamps = [instant(s.text) for s in document.iterfind(".//o:DateTimeStamp", NS)]
    for record in document.iterfind(".//o:AuditRecord", NS):
        assert record.find("o:UserRef", NS).get("UserOID") in users
    assert stamps and all(s < created for s in stamps)


def test_valid_signatures_sit_on_their_visit_and_casebook(rct, rct_odm):
    _record, document, _audit = rct_odm
    signatures = Signature.objects.filter(patient__study=rct).select_related("patient", "visit")
    assert signatures.filter(voided_at__isnull=False).exists()
    valid_ones = signatures.filter(voided_at__isnull=True)
    assert valid_ones.filter(visit__isnull=True).exists() and valid_ones.filter(visit__isnull=False)
    written = document.xpath("//o:Signature", namespaces=NS)
    assert len(written) == valid_ones.count()
    for signature in valid_ones:
        path = "//o:SubjectData[@SubjectKey=$s]"
        if signature.visit is not None:
            path += "/o:StudyEventData[@StudyEventOID=$e]"
        [node] = document.xpath(
            path + "/o:Signature",
            namespaces=NS,
            s=signature.patient.subject_code,
            e=f"SE.{signature.visit.code}" if signature.visit else "",
        )
        assert node.find("o:UserRef", NS).get("UserOID") == f"USR.{signature.signer.username}"
        assert node.find("o:LocationRef", NS).get("LocationOID") == (
            f"LOC.{signature.patient.site.code}"
        )
        assert node.find("o:SignatureRef", NS).get("SignatureOID") == f"SD.{signature.meaning}"
        assert instant(node.findtext("o:DateTimeStamp", namespaces=NS)) == signature.signed_at
    # The voided signature is not there: its visit has no valid one since.
    voided = signatures.get(voided_at__isnull=False)
    assert not valid_ones.filter(visit=voided.visit).exists()
    assert not document.xpath(
        "//o:SubjectData[@SubjectKey=$s]/o:StudyEventData[@StudyEventOID=$e]/o:Signature",
        namespaces=NS,
        s=voided.patient.subject_code,
        e=f"SE.{voided.visit.code}",
    )
    defs = document.getroot().findall("o:AdminData/o:SignatureDef", NS)
    assert {d.get("OID") for d in defs} == {
        f"SD.{m}" for m in valid_ones.values_list("meaning", flat=True)
    }
    assert all(d.findtext("o:Meaning", namespaces=NS) for d in defs)


def test_the_cohort_keeps_each_culture_apart(cohort, tmp_path, schema):
    export_run(study=cohort, by=user("datamanager"), formats=["odm"], out_dir=tmp_path)
    document = valid(schema, tmp_path / "odm" / f"{COHORT}_snapshot.xml")
    mdv = document.getroot().findall("o:Study/o:MetaDataVersion", NS)[-1]
    assert mdv.find("o:ItemGroupDef[@OID='IG.mdm_cytokines']", NS).get("Repeating") == "Yes"
    forms = document.xpath("//o:FormData[@FormOID='F.mdm_cytokines']", namespaces=NS)
    assert forms
    repeated = 0
    for form in forms:
        keys = [group.get("ItemGroupRepeatKey") for group in form]
        assert all(keys) and len(keys) == len(set(keys))
        repeated = max(repeated, len(keys))
    assert repeated > 1
    cultures = MdmCytokines.objects.filter(patient__study=cohort).select_related("patient", "visit")
    assert sum(len(form) for form in forms) == cultures.count()
    for culture in cultures:
        [group] = document.xpath(
            "//o:SubjectData[@SubjectKey=$s]/o:StudyEventData[@StudyEventOID=$e]"
            "/o:FormData[@FormOID='F.mdm_cytokines']/o:ItemGroupData[@ItemGroupRepeatKey=$k]",
            namespaces=NS,
            s=culture.patient.subject_code,
            e=f"SE.{culture.visit.code}",
            k=culture.condition,
        )
        values = {d.get("ItemOID"): d.get("Value") for d in group.findall("o:ItemData", NS)}
        assert values["I.mdm_cytokines.condition"] == culture.condition
        for name in ("ccl18_pg_ml", "il6_pg_ml", "ruxolitinib_nm"):
            stored = getattr(culture, name)
            written = values.get(f"I.mdm_cytokines.{name}")
            if stored is None:
                assert written is None
            else:
                assert Decimal(written) == stored
        below = values.get("I.mdm_cytokines.ccl18_below_lod")
        assert below == ("true" if culture.ccl18_below_lod else "false")


def test_a_blinded_odm_names_no_arm_anywhere(rct, tmp_path, schema):
    export_run(study=rct, by=user("admin"), formats=["odm", "odm-audit"], out_dir=tmp_path)
    arms = rct.current_protocol.protocol.arms
    words = [arm.code for arm in arms] + [arm.label_en for arm in arms]
    words += [arm.label_fr for arm in arms if arm.label_fr]
    for path in sorted(tmp_path.rglob("*.xml")):
        valid(schema, path)
        content = path.read_text(encoding="utf-8")
        assert "F.allocation" not in content and "I.allocation.arm" not in content
        for word in words:
            assert not re.search(rf"\b{re.escape(word)}\b", content, re.IGNORECASE), (path, word)
    # The kits are there: what the blinded see.
    document = etree.parse(str(tmp_path / "odm" / f"{RCT}_snapshot.xml"))
    kits = {
        data.get("Value")
        for data in document.iterfind(".//o:ItemData[@ItemOID='I.drug_dispensing.kit_number']", NS)
    }
    assert kits and kits <= set(Allocation.objects.values_list("kit_number", flat=True))


def test_an_unblinded_odm_carries_the_allocation_per_patient(rct, tmp_path, schema):
    export_run(study=rct, by=user("admin"), formats=["odm"], unblinded=True, out_dir=tmp_path)
    document = valid(schema, tmp_path / "odm" / f"{RCT}_snapshot.xml")
    written = {
        subject.get("SubjectKey"): subject.xpath(
            "o:StudyEventData[@StudyEventOID='SE.PER_PATIENT']/o:FormData[@FormOID="
            "'F.allocation']//o:ItemData[@ItemOID='I.allocation.arm']/@Value",
            namespaces=NS,
        )
        for subject in document.iterfind(".//o:SubjectData", NS)
    }
    stored = dict(
        Allocation.objects.filter(study=rct, patient__isnull=False).values_list(
            "patient__subject_code", "arm"
        )
    )
    assert {code: arms[0] for code, arms in written.items() if arms} == stored


def test_the_manifest_lists_both_files_with_their_checksums(rct, rct_odm, tmp_path):
    record, document, audit = rct_odm
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    names = [file["name"] for file in manifest["files"]]
    assert names == [f"odm/{RCT}_snapshot.xml", f"odm-audit/{RCT}_audit.xml"]
    for file in manifest["files"]:
        assert hashlib.sha256((tmp_path / file["name"]).read_bytes()).hexdigest() == file["sha256"]
    groups = len(document.getroot().findall(".//o:ItemGroupData", NS))
    assert manifest["files"][0]["rows"] == groups
    assert manifest["files"][1]["rows"] == len(audit.getroot().findall(".//o:SubjectData", NS))
    assert manifest["audit_period"] == {"from": None, "to": None}
    assert record.formats == ["odm", "odm-audit"]


def _audit_stamps(document) -> list[datetime]:
    return [instant(s.text) for s in document.iterfind(".//o:AuditRecord/o:DateTimeStamp", NS)]


def test_the_audit_file_is_the_trail_in_time_order(rct, rct_odm):
    _record, _snapshot, document = rct_odm
    root = document.getroot()
    assert root.get("FileType") == "Transactional"
    stamps = _audit_stamps(document)
    assert stamps == sorted(stamps)
    assert all(s < instant(root.get("CreationDateTime")) for s in stamps)
    kinds = {d.get("TransactionType") for d in document.iterfind(".//o:ItemData", NS)}
    assert {"Insert", "Update"} <= kinds
    for data in document.iterfind(".//o:ItemData", NS):
        assert data.find("o:AuditRecord", NS) is not None
    # The correction of the face score is an Update from the old value, with its reason.
    event = Mrss.pgh_event_model.objects.get(
        pgh_obj__patient__study=rct,
        pgh_label="update",
        pgh_context__reason__startswith="Transcription error",
    )
    updates = [
        data
        for data in document.iterfind(".//o:ItemData[@ItemOID='I.mrss.face']", NS)
        if data.get("TransactionType") == "Update"
        and data.findtext("o:AuditRecord/o:ReasonForChange", namespaces=NS)
        == event.pgh_context["reason"]
    ]
    assert [data.get("Value") for data in updates] == [str(event.face)]
    # The whole trail of the exported forms: one SubjectData per event that changed an item.
    inserts = Mrss.pgh_event_model.objects.filter(pgh_obj__patient__study=rct, pgh_label="insert")
    mrss_inserts = document.xpath(
        "//o:SubjectData[.//o:ItemData[@ItemOID='I.mrss.total'][@TransactionType='Insert']]",
        namespaces=NS,
    )
    assert len(mrss_inserts) == inserts.exclude(total__isnull=True).count()


def test_the_audit_file_keeps_only_the_period_asked_for(rct, tmp_path, schema):
    """The seed writes its trail in one transaction (one instant): a later correction, as the
    trigger would record it, is the only event of a period that starts after the seed."""
    event = Mrss.pgh_event_model.objects.filter(pgh_obj__patient__study=rct).latest("pgh_id")
    fields = {
        f.attname: getattr(event, f.attname)
        for f in Mrss.pgh_event_model._meta.concrete_fields
        if f.attname != "pgh_id"
    }
    fields |= {
        "pgh_label": "update",
        "face": 3 if event.face != 3 else 2,
        "pgh_context": {"user": user("investigator.bordeaux").pk, "reason": "Later correction"},
    }
    later = Mrss.pgh_event_model.objects.create(**fields).pgh_created_at
    assert later > event.pgh_created_at
    datamanager = user("datamanager")
    export_run(
        study=rct,
        by=datamanager,
        formats=["odm-audit"],
        audit_from=later - timedelta(hours=1),
        audit_to=later + timedelta(hours=1),
        out_dir=tmp_path / "after",
    )
    document = valid(schema, tmp_path / "after" / "odm-audit" / f"{RCT}_audit.xml")
    [data] = document.iterfind(".//o:ItemData", NS)
    assert data.get("ItemOID") == "I.mrss.face" and data.get("TransactionType") == "Update"
    assert data.get("Value") == str(fields["face"])
    assert data.findtext("o:AuditRecord/o:ReasonForChange", namespaces=NS) == "Later correction"
    assert _audit_stamps(document) == [later]
    manifest = json.loads((tmp_path / "after" / "manifest.json").read_text())
    assert (
        manifest["audit_period"]["from"] == (later - timedelta(hours=1)).astimezone(UTC).isoformat()
    )
    # Up to the seed's instant: everything but the later correction.
    export_run(
        study=rct,
        by=datamanager,
        formats=["odm-audit"],
        audit_to=event.pgh_created_at,
        out_dir=tmp_path / "before",
    )
    document = valid(schema, tmp_path / "before" / "odm-audit" / f"{RCT}_audit.xml")
    stamps = _audit_stamps(document)
    assert stamps and max(stamps) <= event.pgh_created_at
    assert "Later correction" not in (
        tmp_path / "before" / "odm-audit" / f"{RCT}_audit.xml"
    ).read_text(encoding="utf-8")


def test_a_date_is_iso_8601(rct, rct_odm):
    _record, document, _audit = rct_odm
    mrss = Mrss.objects.filter(patient__study=rct, exam_date__isnull=False).select_related(
        "patient", "visit"
    )[0]
    [data] = item(document, mrss.patient.subject_code, mrss.visit.code, "mrss", "I.mrss.exam_date")
    assert date.fromisoformat(data.get("Value")) == mrss.exam_date


def test_the_queries_do_not_grow_with_the_subjects(rct, tmp_path):
    """A cursor per dataset, its changes and the signatures, whatever the subjects:
    Bordeaux's patients cost the queries Strasbourg's do."""
    counts, rows = {}, {}
    for site in ("BXP", "STR"):
        with CaptureQueriesContext(connection) as queries:
            record = export_run(
                study=rct,
                by=user("datamanager"),
                formats=["odm", "odm-audit"],
                sites=[site],
                out_dir=tmp_path / site,
            )
        counts[site] = len(queries)
        rows[site] = sum(file.get("rows", 0) for file in record.files)
        root = etree.parse(str(tmp_path / site / "odm" / f"{RCT}_snapshot.xml")).getroot()
        assert root.get("Granularity") == "SingleSite"
        assert {
            s.find("o:SiteRef", NS).get("LocationOID")
            for s in root.iterfind(".//o:SubjectData", NS)
        } == {f"LOC.{site}"}
    assert rows["BXP"] > rows["STR"]
    assert counts["BXP"] == counts["STR"]


@pytest.mark.parametrize("code", [RCT, COHORT])
def test_every_value_postgresql_writes_is_what_odm_value_writes(seeded, tmp_path, schema, code):
    """The ItemData are formatted by the database (sql_text.py): each dataset's groups, in
    the file's order, hold odm_value() of the rows the other writers read, item by item."""
    from ecrf.exports.odm_metadata import form_oid, odm_value
    from ecrf.exports.services import _datasets, export_prepare
    from ecrf.exports.writers.odm import _items

    study = Study.objects.get(code=code)
    AdverseEvent.objects.filter(patient__study=study).update(
        term='Brûlures <"gastriques"> & reflux\nle soir'
    )
    export_run(study=study, by=user("admin"), formats=["odm"], out_dir=tmp_path, unblinded=True)
    document = valid(schema, tmp_path / "odm" / f"{code}_snapshot.xml")
    request = export_prepare(study=study, by=user("admin"), unblinded=True)
    kinds = set()
    for dataset in _datasets(request):
        groups = document.xpath(
            "//o:FormData[@FormOID=$f]/o:ItemGroupData", namespaces=NS, f=form_oid(dataset)
        )
        rows = list(dataset.rows())
        assert len(groups) == len(rows), dataset.code
        items = _items(dataset)
        for group, row in zip(groups, rows, strict=True):
            written = {data.get("ItemOID"): data.get("Value") for data in group}
            for entry in items:
                assert written.get(entry.oid) == odm_value(row[entry.index]), entry.oid
                kinds.add(type(row[entry.index]).__name__)
    assert {"bool", "date", "str", "int", "NoneType"} <= kinds
    if code == RCT:
        assert {"Decimal", "float", "datetime", "dict"} <= kinds
        terms = document.xpath(
            "//o:ItemData[@ItemOID='I.adverse_event.term']/@Value", namespaces=NS
        )
        assert set(terms) == {'Brûlures <"gastriques"> & reflux\nle soir'}
