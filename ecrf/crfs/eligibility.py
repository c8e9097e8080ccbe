"""Eligibility: the protocol's checklist, cross-checked against the data.

Each criterion of the protocol is a checklist line the investigator answers; where
the protocol declares automatic checks, the data decide too. Enrolment needs every
line answered the eligible way ("yes" for inclusion, "no" for exclusion) and every
check passed; a disagreement is reported naming the criterion and the value.
Checks state what the data must show for the patient to be eligible (see
studies/protocol.py). Missing data is never a pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from ecrf.crfs.models import form_model
from ecrf.patients.models import Patient

_UNIT = re.compile(r"^(?P<name>.*) \((?P<unit>[^()]*)\)$")


def _field_label(form_code: str, field: str) -> str:
    """A form field as the form shows it ("Hemoglobin (g/dL)"), never its column name."""
    return str(capfirst(form_model(form_code)._meta.get_field(field).verbose_name))


def _measured(form_code: str, field: str, value: float) -> str:
    """A value with its unit after it, as people write it: "Hemoglobin 6.5 g/dL"."""
    label = _field_label(form_code, field)
    match = _UNIT.match(label)
    if match is None:
        return f"{label} {value:g}"
    return f"{match['name']} {value:g} {match['unit']}"


@dataclass(frozen=True)
class CheckResult:
    ok: bool | None  # None: the data needed are not there yet
    detail: str


@dataclass(frozen=True)
class CriterionResult:
    criterion: object
    answer: bool | None
    checks: tuple[CheckResult, ...]

    @property
    def data_ok(self) -> bool | None:
        if any(c.ok is False for c in self.checks):
            return False
        if any(c.ok is None for c in self.checks):
            return None
        return True

    @property
    def eligible(self) -> bool:
        return self.problem() is None

    def problem(self) -> str | None:
        """Why this line stops enrolment, naming the criterion and the value (None: it does not)."""
        c = self.criterion
        label = f"{c.id} «\u00a0{getattr(c, 'translation', None) or c.text}\u00a0»"
        if self.answer is None:
            return _("%s: answer this line of the checklist.") % label
        failing = [r.detail for r in self.checks if r.ok is False]
        missing = [r.detail for r in self.checks if r.ok is None]
        if self.answer is c.expected_answer and failing:
            return _("%(label)s: the checklist says the patient qualifies, but %(why)s.") % {
                "label": label,
                "why": "; ".join(failing),
            }
        if self.answer is not c.expected_answer:
            return _("%s: the checklist answer excludes the patient.") % label
        if missing:
            return _("%(label)s: %(why)s.") % {"label": label, "why": "; ".join(missing)}
        return None


def _latest(code: str, patient: Patient, visit_code: str | None = None):
    rows = form_model(code).objects.filter(patient=patient)
    if visit_code:
        rows = rows.filter(visit__code=visit_code)
    return rows.order_by("-pk").first()


def _num(value) -> float | None:
    return float(value) if isinstance(value, int | float | Decimal) else None


def _age_at_consent(check, patient, day0) -> CheckResult:
    demo, consent = _latest("demographics", patient), _latest("consent", patient)
    if demo is None or demo.birth_year is None:
        return CheckResult(None, _("the year of birth is not recorded yet"))
    if consent is None or consent.consent_date is None:
        return CheckResult(None, _("the consent date is not recorded yet"))
    signed = consent.consent_date
    # Without the day (or month) of birth, count only the years certainly completed.
    completed = signed.year - demo.birth_year
    if demo.birth_month is None or signed.month <= demo.birth_month:
        completed -= 1
    ok = completed >= check.years
    return CheckResult(
        ok,
        _("age at consent is at least %(age)d (needs %(years)d)")
        % {"age": completed, "years": check.years},
    )


def _mrss_total(check, patient, day0) -> CheckResult:
    form = _latest("mrss", patient, check.visit)
    if form is None or form.total is None:
        return CheckResult(None, _("no complete mRSS at %s yet") % check.visit)
    return CheckResult(
        form.total > check.value,
        _("the mRSS total at %(visit)s is %(total)d (needs > %(value)d)")
        % {"visit": check.visit, "total": form.total, "value": check.value},
    )


def _lvef(check, patient, day0) -> CheckResult:
    form = _latest("echocardiography", patient)
    value = _num(form.lvef_pct) if form else None
    if value is None:
        return CheckResult(None, _("no LVEF recorded yet"))
    return CheckResult(
        value > check.value,
        _("LVEF is %(value)s %% (needs > %(limit)s %%)") % {"value": value, "limit": check.value},
    )


def _pregnancy(check, patient, day0) -> CheckResult:
    demo = _latest("demographics", patient)
    if demo is None or demo.sex is None:
        return CheckResult(None, _("sex is not recorded yet"))
    if demo.sex != "F" or demo.childbearing_potential is False:
        return CheckResult(True, _("not applicable (no childbearing potential)"))
    if demo.childbearing_potential is None:
        return CheckResult(None, _("childbearing potential is not recorded yet"))
    test = _latest("pregnancy_test", patient)
    if test is None or test.test_date is None or not test.result:
        return CheckResult(None, _("no pregnancy test recorded yet"))
    before = (day0 - test.test_date).days
    ok = test.result == "negative" and 0 <= before <= check.days
    return CheckResult(
        ok,
        _("the pregnancy test is %(result)s, %(days)d days before inclusion (needs negative, "
          "0 to %(limit)d days)")
        % {"result": test.get_result_display(), "days": before, "limit": check.days},
    )  # fmt: skip


def _labs_uln(check, patient, day0) -> CheckResult:
    labs = _latest("safety_labs", patient)
    if labs is None:
        return CheckResult(None, _("no safety laboratory results yet"))
    over, missing = [], []
    for analyte in check.analytes:
        value, uln = _num(getattr(labs, analyte)), _num(getattr(labs, f"{analyte}_uln"))
        if value is None or not uln:
            missing.append(_field_label("safety_labs", analyte))
        elif value / uln > check.ratio:
            over.append(f"{_measured('safety_labs', analyte, value)} ({value / uln:.2f} × ULN)")
    if over:
        return CheckResult(
            False,
            _("%(values)s above %(ratio)s × ULN")
            % {"values": ", ".join(over), "ratio": check.ratio},
        )
    if missing:
        return CheckResult(None, _("%s or its ULN not recorded yet") % ", ".join(missing))
    return CheckResult(True, _("all within %s × ULN") % check.ratio)


def _labs_min(check, patient, day0) -> CheckResult:
    labs = _latest("safety_labs", patient)
    if labs is None:
        return CheckResult(None, _("no laboratory results yet"))
    low, missing = [], []
    for analyte, limit in check.limits.items():
        value = _num(getattr(labs, analyte))
        if value is None:
            missing.append(_field_label("safety_labs", analyte))
        elif value < limit:
            low.append(
                _("%(value)s, needs ≥ %(limit)s")
                % {"value": _measured("safety_labs", analyte, value), "limit": f"{limit:g}"}
            )
    if low:
        return CheckResult(False, ", ".join(low))
    if missing:
        return CheckResult(None, _("%s not recorded yet") % ", ".join(missing))
    return CheckResult(True, _("all at or above their limits"))


def _months_before(day: date, months: int) -> date:
    month = day.month - months
    year = day.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    if year < date.min.year:
        raise OverflowError("date value out of range")  # as date arithmetic says it
    for last in (31, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def _no_event_within(check, patient, day0) -> CheckResult:
    form_code, _dot, field = check.field.partition(".")
    form = _latest(form_code, patient)
    if form is None:
        return CheckResult(
            None,
            _("%s is not recorded yet") % patient.protocol_version.protocol.form_label(form_code),
        )
    when = getattr(form, field)
    field = _field_label(form_code, field)
    if when is None:
        return CheckResult(True, _("%s: none") % field)
    limit = (
        _months_before(day0, check.months) if check.months else day0 - timedelta(days=check.days)
    )
    period = _("%d months") % check.months if check.months else _("%d days") % check.days
    return CheckResult(
        when < limit,
        _("%(field)s is %(date)s, within %(period)s before inclusion")
        % {"field": field, "date": date_format(when, "SHORT_DATE_FORMAT"), "period": period}
        if when >= limit
        else _("%(field)s is %(date)s")
        % {"field": field, "date": date_format(when, "SHORT_DATE_FORMAT")},
    )


def _classification(check, patient, day0) -> CheckResult:
    form = _latest(check.form, patient)
    if form is None or not form.classification:
        return CheckResult(
            None,
            _("%s is not recorded yet") % patient.protocol_version.protocol.form_label(check.form),
        )
    return CheckResult(
        form.classification == "classified",
        _("%(form)s concludes: %(status)s")
        % {
            "form": patient.protocol_version.protocol.form_label(check.form),
            "status": str(form.get_classification_display()).lower(),
        },
    )


RULES = {
    "age_at_consent_min": _age_at_consent,
    "mrss_total_gt": _mrss_total,
    "lvef_gt": _lvef,
    "pregnancy_test_negative_within_days": _pregnancy,
    "labs_max_uln_ratio": _labs_uln,
    "labs_min": _labs_min,
    "no_event_within": _no_event_within,
    "classification_met": _classification,
}


def eligibility_evaluate(
    *, patient: Patient, answers: dict[str, bool | None], day0: date
) -> list[CriterionResult]:
    """Each criterion of the patient's protocol (for their group) with answer and checks."""
    protocol = patient.protocol_version.protocol
    group = patient.group or None
    results = []
    for criterion in protocol.eligibility_for(group):
        checks = tuple(
            RULES[check.rule](check, patient, day0)
            for check in criterion.checks
            if check.groups is None or group in check.groups
        )
        results.append(CriterionResult(criterion, answers.get(criterion.id), checks))
    return results


def eligibility_problems(results: list[CriterionResult]) -> list[str]:
    return [problem for result in results if (problem := result.problem())]
