"""CDISC ODM 1.3.2: the study's metadata and administrative data, and the values as ODM
writes them, for the `odm` and `odm-audit` writers (writers/odm.py).

OIDs are readable and stable across exports: `SE.<visit>`, `F.<form>`, `IG.<form>`,
`I.<form>.<variable>`, `CL.<form>.<variable>`, `MU.<unit>`, `LOC.<site>`, `USR.<username>`.
One `MetaDataVersion` per protocol version (`MDV.<version>`); the clinical data refer to
the latest, which also defines the visits that only earlier versions had.

ODM has no visit windows, and the 1.3.2 schema has no wildcard (`xs:any`,
`xs:anyAttribute`) anywhere: its extension points are empty groups meant for
`xs:redefine`, so a foreign attribute or element fails validation against the plain
ODM1-3-2.xsd. The windows are therefore `Alias` elements of each `StudyEventDef` whose
`Context` is a name of our own namespace (`ecrf:TargetDay`, `ecrf:EarliestDay`,
`ecrf:LatestDay`, `ecrf:AfterVisit`; xmlns:ecrf is declared on the root), which the plain
schema accepts and a reader can still tell from any other alias.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext as _
from lxml import etree

from ecrf.exports.datasets import VISIT_CODE, Dataset
from ecrf.exports.dictionary import Variable, as_text

NS = "http://www.cdisc.org/ns/odm/v1.3"
EXTENSION_NS = "https://ecrf.example/odm-extension/1"
NSMAP = {None: NS, "ecrf": EXTENSION_NS}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
LANGUAGES = ("en", "fr")

# The study event of the logs kept per patient (the adverse events, the allocation).
PER_PATIENT = "PER_PATIENT"
# Text columns that hold an ISO 8601 date which may lack its day (an onset "2026-10").
PARTIAL_DATES = {"adverse_event": frozenset({"onset_date"})}
# The item a repeating group's instances are told apart by, when the form has no INDEX_KEY.
REPEAT_FIELDS = {"adverse_event": "number"}


def tag(name: str) -> str:
    return f"{{{NS}}}{name}"


def element(name: str, attrib: dict | None = None, *children, text: str | None = None):
    # The default namespace on every element: appended to a parent, lxml drops the
    # repeated declaration; written alone into the xmlfile, it needs no ns0: prefix.
    node = etree.Element(
        tag(name), {k: str(v) for k, v in (attrib or {}).items()}, nsmap={None: NS}
    )
    for child in children:
        if child is not None:
            node.append(child)
    if text is not None:
        node.text = text
    return node


def translated(name: str, texts: dict[str, str | None]):
    """`<name><TranslatedText xml:lang="en">…</TranslatedText>…</name>`, one per language
    that has a text."""
    node = element(name)
    for language in LANGUAGES:
        if texts.get(language):
            child = element("TranslatedText", text=str(texts[language]))
            child.set(XML_LANG, language)
            node.append(child)
    return node


# -- OIDs ------------------------------------------------------------------------------------


def study_oid(study) -> str:
    return f"S.{study.code}"


def mdv_oid(version) -> str:
    return f"MDV.{version}"


def event_oid(visit_code: str | None) -> str:
    return f"SE.{visit_code or PER_PATIENT}"


def form_oid(dataset: Dataset) -> str:
    return f"F.{dataset.code}"


def group_oid(dataset: Dataset) -> str:
    return f"IG.{dataset.code}"


def item_oid(dataset: Dataset, variable: Variable) -> str:
    return f"I.{dataset.code}.{variable.name}"


def code_list_oid(dataset: Dataset, variable: Variable) -> str:
    return f"CL.{dataset.code}.{variable.name}"


def unit_oid(unit: str) -> str:
    return "MU." + re.sub(r"[^A-Za-z0-9]+", "_", unit.replace("%", "percent").replace("/", "_per_"))


def location_oid(site_code: str) -> str:
    return f"LOC.{site_code}"


def user_oid(username: str | None) -> str:
    return f"USR.{username}" if username else SYSTEM_USER


# A change without a user (a task, a data migration) is the system's: ODM wants a UserRef.
SYSTEM_USER = "USR.system"
SIGNATURE_DEFS = {"visit": "SD.visit", "casebook": "SD.casebook"}

# The visit date and the form's status: keys of every visit form, items of its group.
VISIT_DATE_OID = "I.visit_date"
FORM_STATUS_OID = "I.form_status"
FORM_STATUS_CODES = "CL.form_status"


def per_visit(dataset: Dataset) -> bool:
    return any(key.name == VISIT_CODE.name for key in dataset.keys)


def repeat_field(dataset: Dataset) -> str:
    """The field whose value tells apart a repeating group's instances ("" for none)."""
    return getattr(dataset.model, "INDEX_KEY", "") or REPEAT_FIELDS.get(dataset.code, "")


# -- values ----------------------------------------------------------------------------------


def odm_type(dataset: Dataset, variable: Variable) -> str:
    if variable.name in PARTIAL_DATES.get(dataset.code, ()):
        return "partialDate"
    if variable.type == "coded":
        numeric = all(isinstance(code, int) for code, *_labels in variable.codes)
        return "integer" if numeric else "text"
    return {
        "boolean": "boolean",
        "integer": "integer",
        "decimal": "float",
        "float": "float",
        "date": "date",
        "datetime": "datetime",
    }.get(variable.type, "text")


def odm_value(value) -> str | None:
    """A value as ItemData writes it (None: missing, no ItemData): codes as their codes,
    ISO 8601 dates, instants in UTC, yes/no as xs:boolean, a partial date as it is."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    return as_text(value, yes="true", no="false")


def instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


# -- the Study element -----------------------------------------------------------------------


def _units(datasets: Iterable[Dataset]) -> list[str]:
    return sorted({v.unit for dataset in datasets for v in dataset.variables if v.unit})


def _range_checks(variable: Variable) -> list:
    field = variable.field
    if field is None or field.choices:
        return []
    checks = []
    # The validators the model declares, not the column's own integer bounds.
    for validator in getattr(field, "_validators", []):
        if isinstance(validator, MinValueValidator):
            comparator = "GE"
        elif isinstance(validator, MaxValueValidator):
            comparator = "LE"
        else:
            continue
        limit = validator.limit_value
        if callable(limit):
            continue
        checks.append(
            element(
                "RangeCheck",
                {"Comparator": comparator, "SoftHard": "Hard"},
                element("CheckValue", text=odm_value(limit)),
            )
        )
    return checks


def _item_def(oid: str, name: str, data_type: str, variable: Variable, code_list: str = ""):
    attrib = {"OID": oid, "Name": name, "DataType": data_type}
    field = variable.field
    if isinstance(field, models.CharField) and data_type == "text" and field.max_length:
        attrib["Length"] = field.max_length
    if isinstance(field, models.DecimalField):
        attrib["Length"] = field.max_digits
        attrib["SignificantDigits"] = field.decimal_places
    node = element(
        "ItemDef",
        attrib,
        translated("Question", {"en": variable.label_en, "fr": variable.label_fr}),
    )
    if variable.unit:
        node.append(element("MeasurementUnitRef", {"MeasurementUnitOID": unit_oid(variable.unit)}))
    for check in _range_checks(variable):
        node.append(check)
    if code_list:
        node.append(element("CodeListRef", {"CodeListOID": code_list}))
    return node


def _code_list(oid: str, name: str, data_type: str, variable: Variable):
    node = element("CodeList", {"OID": oid, "Name": name, "DataType": data_type})
    for order, (code, label_en, label_fr) in enumerate(variable.codes, start=1):
        node.append(
            element(
                "CodeListItem",
                {"CodedValue": code, "OrderNumber": order},
                translated("Decode", {"en": label_en, "fr": label_fr}),
            )
        )
    return node


def _visit_aliases(visit) -> list:
    aliases = {
        "ecrf:TargetDay": visit.target_day,
        "ecrf:EarliestDay": visit.earliest_day,
        "ecrf:LatestDay": visit.latest_day,
        "ecrf:AfterVisit": visit.after_visit,
    }
    return [
        element("Alias", {"Context": context, "Name": value})
        for context, value in aliases.items()
        if value is not None
    ]


def _visits(protocols: list, index: int) -> list:
    """The visits a metadata version defines: its protocol's, and for the latest (the one
    the clinical data refer to) those only earlier versions had."""
    visits = list(protocols[index].visits)
    if index == len(protocols) - 1:
        known = {visit.code for visit in visits}
        for protocol in reversed(protocols[:-1]):
            for visit in protocol.visits:
                if visit.code not in known:
                    visits.append(visit)
                    known.add(visit.code)
    return visits


def metadata_version(version, protocols: list, index: int, datasets: list[Dataset]):
    protocol = protocols[index]
    by_code = {dataset.code: dataset for dataset in datasets}
    visits = _visits(protocols, index)
    logs = [dataset for dataset in datasets if not per_visit(dataset)]
    mdv = element(
        "MetaDataVersion",
        {
            "OID": mdv_oid(version.version),
            "Name": f"{version.study.code} protocol {version.version}",
            "Description": _("Protocol version %(version)s, effective %(date)s")
            % {"version": version.version, "date": protocol.effective_date.isoformat()},
        },
    )
    protocol_node = element("Protocol")
    order = 0
    for visit in visits:
        order += 1
        protocol_node.append(
            element(
                "StudyEventRef",
                {
                    "StudyEventOID": event_oid(visit.code),
                    "OrderNumber": order,
                    "Mandatory": "Yes" if visit.kind == "scheduled" else "No",
                },
            )
        )
    if logs:
        protocol_node.append(
            element(
                "StudyEventRef",
                {"StudyEventOID": event_oid(None), "OrderNumber": order + 1, "Mandatory": "No"},
            )
        )
    mdv.append(protocol_node)
    for visit in visits:
        node = element(
            "StudyEventDef",
            {
                "OID": event_oid(visit.code),
                "Name": visit.name_en,
                "Repeating": "Yes" if visit.repeatable else "No",
                "Type": "Unscheduled" if visit.kind == "unscheduled" else "Scheduled",
                "Category": visit.kind,
            },
            translated("Description", {"en": visit.name_en, "fr": visit.name_fr}),
        )
        forms = [f for f in visit.forms if f.form in by_code and per_visit(by_code[f.form])]
        for number, visit_form in enumerate(forms, start=1):
            node.append(
                element(
                    "FormRef",
                    {
                        "FormOID": form_oid(by_code[visit_form.form]),
                        "OrderNumber": number,
                        "Mandatory": "Yes"
                        if visit_form.required and not visit_form.condition
                        else "No",
                    },
                )
            )
        for alias in _visit_aliases(visit):
            node.append(alias)
        mdv.append(node)
    if logs:
        node = element(
            "StudyEventDef",
            {"OID": event_oid(None), "Name": "Per patient", "Repeating": "No", "Type": "Common"},
            translated(
                "Description", {"en": "Logs kept per patient", "fr": "Journaux par patient"}
            ),
        )
        for number, dataset in enumerate(logs, start=1):
            node.append(
                element(
                    "FormRef",
                    {"FormOID": form_oid(dataset), "OrderNumber": number, "Mandatory": "No"},
                )
            )
        mdv.append(node)
    for dataset in datasets:
        labels = {"en": dataset.label_en, "fr": dataset.label_fr}
        form = element(
            "FormDef",
            {"OID": form_oid(dataset), "Name": dataset.label_en, "Repeating": "No"},
            translated("Description", labels),
            element(
                "ItemGroupRef",
                {"ItemGroupOID": group_oid(dataset), "OrderNumber": 1, "Mandatory": "Yes"},
            ),
        )
        mdv.append(form)
    for dataset in datasets:
        labels = {"en": dataset.label_en, "fr": dataset.label_fr}
        group = element(
            "ItemGroupDef",
            {
                "OID": group_oid(dataset),
                "Name": dataset.code,
                "Repeating": "Yes" if dataset.repeating else "No",
            },
            translated("Description", labels),
        )
        required = set(getattr(dataset.model, "REQUIRED_FIELDS", ()))
        refs = [(VISIT_DATE_OID, False), (FORM_STATUS_OID, True)] if per_visit(dataset) else []
        refs += [(item_oid(dataset, v), v.name in required) for v in dataset.variables]
        for number, (oid, mandatory) in enumerate(refs, start=1):
            group.append(
                element(
                    "ItemRef",
                    {
                        "ItemOID": oid,
                        "OrderNumber": number,
                        "Mandatory": "Yes" if mandatory else "No",
                    },
                )
            )
        mdv.append(group)
    status = next(
        (key for d in datasets if per_visit(d) for key in d.keys if key.name == "form_status"),
        None,
    )
    if status is not None:
        visit_date = next(
            key for d in datasets if per_visit(d) for key in d.keys if key.name == "visit_date"
        )
        mdv.append(_item_def(VISIT_DATE_OID, "visit_date", "date", visit_date))
        mdv.append(_item_def(FORM_STATUS_OID, "form_status", "text", status, FORM_STATUS_CODES))
    code_lists = []
    for dataset in datasets:
        for variable in dataset.variables:
            data_type = odm_type(dataset, variable)
            code_list = ""
            if variable.type == "coded":
                code_list = code_list_oid(dataset, variable)
                code_lists.append(_code_list(code_list, variable.name, data_type, variable))
            mdv.append(
                _item_def(
                    item_oid(dataset, variable), variable.name, data_type, variable, code_list
                )
            )
    if status is not None:
        mdv.append(_code_list(FORM_STATUS_CODES, "form_status", "text", status))
    for node in code_lists:
        mdv.append(node)
    return mdv


def study_element(request, datasets: list[Dataset]):
    """`Study`: GlobalVariables, the units, a MetaDataVersion per protocol version."""
    study = request.study
    node = element(
        "Study",
        {"OID": study_oid(study)},
        element(
            "GlobalVariables",
            None,
            element("StudyName", text=study.acronym),
            element("StudyDescription", text=study.title),
            element("ProtocolName", text=study.code),
        ),
    )
    units = _units(datasets)
    if units:
        basic = element("BasicDefinitions")
        for unit in units:
            basic.append(
                element(
                    "MeasurementUnit",
                    {"OID": unit_oid(unit), "Name": unit},
                    translated("Symbol", {"en": unit}),
                )
            )
        node.append(basic)
    versions = list(study.protocol_versions.order_by("loaded_at"))
    for index, version in enumerate(versions):
        node.append(metadata_version(version, request.protocols, index, datasets))
    return node


def admin_element(request, users, sites, signature_meanings: Iterable[str]):
    """`AdminData`: a User per person in the audit records and signatures (username and
    full name, nothing else), a Location per site, a SignatureDef per meaning signed."""
    study = request.study
    node = element("AdminData", {"StudyOID": study_oid(study)})
    for user in users:
        person = element("User", {"OID": user_oid(user.get_username() if user else None)})
        if user is None:
            person.append(element("LoginName", text="system"))
        else:
            person.append(element("LoginName", text=user.get_username()))
            if user.get_full_name():
                person.append(element("FullName", text=user.get_full_name()))
        node.append(person)
    versions = list(study.protocol_versions.order_by("loaded_at"))
    for site in sites:
        location = element(
            "Location", {"OID": location_oid(site.code), "Name": site.name, "LocationType": "Site"}
        )
        for version in versions:
            location.append(
                element(
                    "MetaDataVersionRef",
                    {
                        "StudyOID": study_oid(study),
                        "MetaDataVersionOID": mdv_oid(version.version),
                        "EffectiveDate": version.effective_date.isoformat(),
                    },
                )
            )
        node.append(location)
    for meaning, attestation in signature_meanings:
        node.append(
            element(
                "SignatureDef",
                {"OID": SIGNATURE_DEFS[meaning], "Methodology": "Electronic"},
                element("Meaning", text=attestation),
                element(
                    "LegalReason",
                    text="21 CFR Part 11 electronic signature: the password asked again",
                ),
            )
        )
    return node
