"""Saving a case report form: the protocol decides which forms a visit takes.

`crf_save` is the only way form data are written. It checks that the form belongs to
the visit under the patient's protocol version, that consent came first, that the
visit has started; it refuses a save based on a stale version, asks for a reason for
any change after the first save, runs the model's own rules on the answers (field
validators, clean(), the score's input checks, hidden answers blanked: the same messages
whoever calls it, the screens or not), holds back plausible-but-unusual values until the
user confirms them, and records everything in the audit trail in one transaction.
"""

from __future__ import annotations

from datetime import date

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audited
from ecrf.core.errors import StaleVersion
from ecrf.core.reasons import change_reason_missing, reason_problem
from ecrf.crfs.base import CrfBase, SoftWarning
from ecrf.crfs.models import form_model
from ecrf.crfs.signals import crf_saved
from ecrf.patients.form_index import form_index_sync
from ecrf.patients.locks import require_unlocked
from ecrf.patients.models import Patient, Visit
from ecrf.patients.services import patient_facts_record
from ecrf.patients.visits import (
    conditions_met,
    consent_date,
    patient_visit_forms,
    visit_refresh_status,
)


class FormNotInVisit(Exception):
    """The protocol does not call for this form at this visit (a crafted URL or POST)."""


class WarningsPending(Exception):
    def __init__(self, warnings: list[SoftWarning]):
        self.warnings = warnings
        super().__init__("; ".join(w.message for w in warnings))


def visit_forms(visit: Visit) -> list[str]:
    """The form codes this visit takes for this patient (group and conditions applied)."""
    patient = visit.patient
    return [f.form for f in patient_visit_forms(patient, visit.code, conditions_met(patient))]


def is_repeatable(visit: Visit, form_code: str) -> bool:
    return visit.patient.protocol_version.protocol.form(form_code).repeatable


def crf_for_visit(
    *,
    visit: Visit,
    form_code: str,
    instance_id: int | None = None,
    forms: list[str] | None = None,
    for_update: bool = False,
):
    """The saved instance of a form at a visit, or None for a new one.

    A repeatable form (one per culture condition) is addressed by its id; an id that is
    not one of this visit's instances, like a form the visit does not take, raises
    FormNotInVisit. `forms` is visit_forms(visit) when the caller has it already;
    `for_update` locks the row until the end of the transaction.
    """
    if form_code not in (visit_forms(visit) if forms is None else forms):
        raise FormNotInVisit(form_code)
    rows = form_model(form_code).objects.filter(visit=visit)
    if for_update:
        rows = rows.select_for_update()
    if is_repeatable(visit, form_code):
        if instance_id is None:
            return None
        instance = rows.filter(pk=instance_id).first()
        if instance is None:
            raise FormNotInVisit(form_code)
        return instance
    if instance_id is not None:
        raise FormNotInVisit(form_code)
    return rows.first()


def yes_no_problems(model, values: dict) -> dict[str, list[str]]:
    """The yes/no answers in `values` that are not Yes, No (or, for a question that may
    stay unanswered, None), each named by its label.

    The model field would take "t", "1" or "False" and turn any other string into a vague
    error; the screens post their own three values. Whoever calls crf_save gives Python's
    True, False or None, nothing else.
    """
    problems = {}
    for field in model._meta.concrete_fields:
        if not isinstance(field, models.BooleanField) or field.name not in values:
            continue
        value = values[field.name]
        if value is True or value is False or (value is None and field.null):
            continue
        # Not echoed: the value may be anything, of any length.
        problems[field.name] = [
            _("%(label)s: choose Yes or No.") % {"label": capfirst(str(field.verbose_name))}
        ]
    return problems


def _date_problems(instance, consented: date | None) -> dict[str, str]:
    today = timezone.localdate()
    problems = {}
    for field in instance._meta.concrete_fields:
        if not isinstance(field, models.DateField) or field.name in ("entered_at", "updated_at"):
            continue
        value = getattr(instance, field.name)
        if value is None:
            continue
        if value > today:
            problems[field.name] = _("%(field)s cannot be in the future.") % {
                "field": field.verbose_name
            }
        elif (
            consented
            and value < consented
            and not instance.RECORDS_CONSENT
            and field.name not in instance.HISTORY_DATES
        ):
            problems[field.name] = _(
                "%(field)s is before the consent date (%(consent)s): "
                "nothing happens before consent."
            ) % {"field": field.verbose_name, "consent": consented.isoformat()}
    return problems


def _constraint_error(instance, exc: IntegrityError) -> ValidationError | None:
    """A database constraint's refusal as a message on its field (None: not the form's own).

    The form validates what it can see; the constraints that also read the patient or the
    visit (one culture condition per visit, a serum donor other than the patient) are
    checked by the database, and their refusal is a message, never a server error.
    """
    model = type(instance)
    name = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
    constraint = next((c for c in model._meta.constraints if c.name == name), None)
    if constraint is None:
        return None
    base = {f.name for f in CrfBase._meta.get_fields()}
    fields = [f.name for f in model._meta.concrete_fields if f.editable and f.name not in base]
    if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
        message = instance.unique_error_message(model, constraint.fields)
        named = [f for f in constraint.fields if f in fields]
    else:
        # Constraints are named <model>_<field>_<rule> (crfs/models.py).
        message = ValidationError(constraint.get_violation_error_message())
        rule = name.removeprefix(f"{model._meta.model_name}_")
        named = sorted((f for f in fields if rule.startswith(f"{f}_")), key=len)[-1:]
    return ValidationError({named[0] if len(named) == 1 else NON_FIELD_ERRORS: message})


def crf_save(
    *,
    visit: Visit,
    form_code: str,
    values: dict,
    by,
    expected_version: int | None,
    reason: str = "",
    confirmed: frozenset[str] = frozenset(),
    instance_id: int | None = None,
):
    """Create or change the form of a visit; returns the saved instance."""
    # A version names a saved form: changing it is a correction, saving a new one an entry.
    require(by, Action.CORRECT if expected_version else Action.ENTER, patient=visit.patient)
    reason = reason.strip()
    with transaction.atomic():
        # The visit and its patient are locked; the protocol version comes along, unlocked.
        visit = (
            Visit.objects.select_for_update(of=("self", "patient"))
            .select_related("patient__protocol_version")
            .get(pk=visit.pk)
        )
        patient = visit.patient
        # Read once for the whole save: which forms the visit takes under the conditions
        # that hold (the protocol's "if female of childbearing potential").
        conditions = conditions_met(patient)
        forms = [f.form for f in patient_visit_forms(patient, visit.code, conditions)]
        if form_code not in forms:
            raise FormNotInVisit(form_code)
        # The patient first: after withdrawal every open visit is closed, and "date the
        # visit first" would send the user the wrong way.
        if patient.status not in (Patient.Status.SCREENING, Patient.Status.ENROLLED):
            raise ValidationError(
                _("The patient's data are closed (%s).") % patient.get_status_display()
            )
        if visit.status in (Visit.Status.MISSED, Visit.Status.CLOSED):
            raise ValidationError(
                _("Visit %(code)s is %(status)s: no form can be entered.")
                % {"code": visit.code, "status": visit.get_status_display().lower()}
            )
        if visit.visit_date is None or visit.status not in (
            Visit.Status.IN_PROGRESS,
            Visit.Status.COMPLETE,
        ):
            raise ValidationError(_("Date visit %s before entering its forms.") % visit.code)
        model = form_model(form_code)
        consented = consent_date(patient)
        if not model.RECORDS_CONSENT and consented is None:
            raise ValidationError(_("Record the signed consent before any other form."))

        if unknown := sorted(set(values) - set(model.answer_fields())):
            # The patient, the status, a score...: set by the service or derived, never given.
            raise ValidationError(
                {NON_FIELD_ERRORS: _("Not fields of this form: %s.") % ", ".join(unknown)}
            )
        if refused := yes_no_problems(model, values):
            # Before anything else reads them: a hidden answer is blanked further down, and
            # a junk answer must be refused, not silently dropped.
            raise ValidationError(refused)
        instance = crf_for_visit(
            visit=visit, form_code=form_code, instance_id=instance_id, forms=forms, for_update=True
        )
        # Frozen or locked: the study, the site, the casebook, the visit or this form.
        require_unlocked(patient=patient, visit=visit, entry=instance)
        if instance is None:
            if expected_version not in (None, 0):
                raise StaleVersion(model._meta.verbose_name)
            instance = model(
                patient=patient,
                visit=visit,
                protocol_version=patient.protocol_version,
                entered_by=by,
            )
        elif expected_version != instance.version:
            raise StaleVersion(str(model._meta.verbose_name))
        else:
            instance.patient, instance.visit = patient, visit  # already read, and locked
        values = instance.without_hidden_answers(values)
        errors = {}
        if instance.pk is not None:
            if all(getattr(instance, name) == value for name, value in values.items()):
                # Saved again as shown: nothing to audit, no new version, no reason needed.
                return instance
            if not reason:
                errors["reason"] = [change_reason_missing()]
            elif problem := reason_problem(reason, label=_("Reason for change")):
                errors["reason"] = [problem]
            instance.version += 1
        for name, value in values.items():
            setattr(instance, name, value)
        try:
            instance.validate_answers()
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)
        problems = {**instance.context_problems(), **_date_problems(instance, consented)}
        if problems:
            raise ValidationError(problems)
        instance.compute_derived()
        warnings = instance.soft_warnings()
        pending = [w for w in warnings if w.code not in confirmed]
        if pending:
            raise WarningsPending(pending)
        instance.confirmed_warnings = [{"code": w.code, "message": w.message} for w in warnings]
        instance.status = (
            model.Status.IN_PROGRESS if instance.missing_fields() else model.Status.COMPLETE
        )
        with audited(by=by, reason=reason or "first entry"):
            try:
                with transaction.atomic():
                    instance.save()
            except IntegrityError as exc:
                error = _constraint_error(instance, exc)
                if error is None:
                    raise
                raise error from None
            form_index_sync(instance)
            patient_facts_record(patient=patient, facts=instance.patient_facts())
            # Within the transaction and its audit context: what the other apps do about
            # this form (a safety_labs form's lab alerts) commits or fails with it.
            crf_saved.send(sender=model, instance=instance, by=by)
            if model.DECIDES_CONDITIONS:
                conditions = conditions_met(patient)  # this save may have changed them
            required = [
                f.form for f in patient_visit_forms(patient, visit.code, conditions) if f.required
            ]
            visit_refresh_status(visit=visit, by=by, required=required)
    return instance
