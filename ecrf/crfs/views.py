"""Visit pages and CRF forms for site staff; monitors and data managers read them."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from ecrf.accounts.access import studies_visible_to
from ecrf.accounts.permissions import Action, actions_for, can
from ecrf.core.errors import StaleVersion
from ecrf.core.widgets import DateInput
from ecrf.crfs.forms import crf_form, crf_form_class
from ecrf.crfs.missing import baseline_warning, missing_text
from ecrf.crfs.models import (
    SERUM_CONDITIONS,
    condition_message,
    culture_conditions,
    form_model,
    serum_donor_message,
    serum_donors,
)
from ecrf.crfs.services import (
    FormNotInVisit,
    WarningsPending,
    crf_for_visit,
    crf_save,
    visit_forms,
)
from ecrf.patients.form_index import keys_lacking, required_keys, visit_entries, visit_lacks
from ecrf.patients.locks import (
    active_lock,
    covers_everything,
    lock_message,
    locks_shown,
    visit_locks,
)
from ecrf.patients.models import DataLock, Deviation, FormIndexEntry, Patient, Visit
from ecrf.patients.visits import (
    visit_mark_missed,
    visit_order_problem,
    visit_record_date,
    visit_required_forms,
)


class VisitDateForm(forms.Form):
    visit_date = forms.DateField(label=gettext_lazy("Visit date"), widget=DateInput())
    # Dating a visit can deviate only by its timing: "missed visit" is not offered here
    # (a visit that did not take place is declared missed below).
    deviation_category = forms.ChoiceField(
        label=gettext_lazy("Deviation category"),
        required=False,
        choices=[
            ("", "—"),
            *((c, Deviation.Category(c).label) for c in Deviation.TIMING_CATEGORIES),
        ],
        help_text=gettext_lazy("Only for a date outside the visit window."),
    )
    deviation_reason = forms.CharField(
        label=gettext_lazy("Deviation reason"), required=False, max_length=1000
    )
    change_reason = forms.CharField(
        label=gettext_lazy("Reason for change"),
        required=False,
        max_length=500,
        help_text=gettext_lazy(
            "Required to change the date of a dated visit; kept in the audit trail."
        ),
    )
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, dated: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not dated:
            # First dating: nothing is changed, so no reason for change is asked.
            del self.fields["change_reason"]


class MissedForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Why was the visit missed?"), max_length=300)
    version = forms.IntegerField(widget=forms.HiddenInput)


def _visit(request, study_code: str, subject_code: str, code: str, repeat: int) -> Visit:
    study = get_object_or_404(studies_visible_to(request.user), code=study_code)
    return get_object_or_404(
        Visit.objects.visible_to(request.user).select_related(
            "patient__site", "patient__study", "patient__protocol_version"
        ),
        patient__study=study,
        patient__subject_code=subject_code,
        code=code,
        repeat=repeat,
    )


def _stale(request, url: str, label: str, *, form=None, differences=()) -> HttpResponse:
    """The 409 page; for a CRF it holds the current version with the user's values beside."""
    return render(
        request,
        "crfs/stale.html",
        {"reload_url": url, "label": label, "form": form, "differences": differences},
        status=409,
    )


def _shown(field, value) -> str:
    """A value as a person reads it: "Yes", "2 moderate", a date in the user's format."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(field, forms.ChoiceField):
        # The model's labels ("2 moderate"): a form may show bare codes (the mRSS radios).
        for key, label in getattr(field, "model_choices", None) or field.choices:
            options = label if isinstance(label, list | tuple) else [(key, label)]
            for option_key, option_label in options:
                if str(option_key) == str(value):
                    return str(option_label)
    return str(formats.localize(value))


def _cleaned(field, raw):
    """The value a field makes of a raw or initial value; the raw value when it refuses it."""
    try:
        return True, field.clean(raw)
    except ValidationError:
        return False, raw


def _differences(typed, current) -> list[dict]:
    """Field by field, what the user typed where it differs from what is now saved."""
    rows = []
    for name, field in current.fields.items():
        if name in ("version", "reason") or name.startswith("confirm_") or name not in typed.fields:
            continue
        raw = typed[name].data
        ok, mine = _cleaned(field, raw)
        _ok, theirs = _cleaned(field, current[name].value())
        if mine == theirs or (mine in (None, "") and theirs in (None, "")):
            continue
        if isinstance(raw, bool):  # a checkbox: the page script ticks it or not
            raw = "on" if raw else ""
        rows.append(
            {
                "name": name,
                "label": str(capfirst(field.label or name)),
                "saved": _shown(field, theirs),
                "typed": _shown(field, mine) if ok else str(raw),
                "raw": "" if raw is None else str(raw),
            }
        )
    return rows


def _stale_crf(request, visit: Visit, form_code: str, instance_id, typed) -> HttpResponse:
    """The current version of the form, ready to save, with what the user typed beside it."""
    try:
        current = crf_for_visit(visit=visit, form_code=form_code, instance_id=instance_id)
    except FormNotInVisit:
        raise Http404 from None
    # _crf_form binds to the POST of a POST request; the current version is shown unbound.
    reading = copy.copy(request)
    reading.method = "GET"
    form = _crf_form(reading, visit, form_code, current)
    form.fields["reason"].initial = typed.data.get("reason", "")
    return _stale(
        request,
        request.path,
        visit.patient.protocol_version.protocol.form_label(form_code),
        form=form,
        differences=_differences(typed, form),
    )


@login_required
@require_http_methods(["GET", "POST"])
def visit_detail(request, study_code, subject_code, code, repeat=1):
    visit = _visit(request, study_code, subject_code, code, repeat)
    patient = visit.patient
    actions = actions_for(request.user, patient=patient)
    # The freezes and locks over the visit and its forms (one query): over the whole visit,
    # its buttons go (a courtesy: the services refuse the change anyway).
    locks = visit_locks(visit)
    held = covers_everything(locks, levels=WHOLE_VISIT) is not None
    can_enter = Action.ENTER in actions and not held
    deviations = list(visit.deviations.open())
    standing = next((d for d in deviations if d.category in Deviation.TIMING_CATEGORIES), None)
    date_form = VisitDateForm(
        request.POST if request.method == "POST" and "visit_date" in request.POST else None,
        initial={
            "visit_date": visit.visit_date,
            "version": visit.version,
            # A re-dated visit still outside its window keeps its deviation unless changed.
            "deviation_category": standing.category if standing else "",
            "deviation_reason": standing.reason if standing else "",
        },
        dated=visit.visit_date is not None,
    )
    missed_form = MissedForm(
        request.POST if request.method == "POST" and "reason" in request.POST else None,
        initial={"version": visit.version},
    )
    if request.method == "POST":
        # The role decides here; a freeze or lock is the service's to refuse, with its reason.
        if Action.ENTER not in actions:
            raise PermissionDenied
        try:
            if date_form.is_bound and date_form.is_valid():
                data = date_form.cleaned_data
                visit_record_date(
                    visit=visit,
                    by=request.user,
                    visit_date=data["visit_date"],
                    expected_version=data["version"],
                    deviation_category=data["deviation_category"],
                    deviation_reason=data["deviation_reason"],
                    change_reason=data.get("change_reason", ""),
                )
                messages.success(request, _("Visit %s dated.") % visit.code)
                return redirect(request.path)
            if missed_form.is_bound and missed_form.is_valid():
                visit_mark_missed(
                    visit=visit,
                    by=request.user,
                    reason=missed_form.cleaned_data["reason"],
                    expected_version=missed_form.cleaned_data["version"],
                )
                messages.success(request, _("Visit %s declared missed.") % visit.code)
                return redirect("patients:detail", study_code, subject_code)
        except StaleVersion as exc:
            return _stale(request, request.path, exc.label)
        except ValidationError as exc:
            form = date_form if date_form.is_bound else missed_form
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc)
        if not (date_form.is_bound or missed_form.is_bound):
            return HttpResponse(_("Nothing to save in this request."), status=400)
    entries = visit_entries(visit)
    return render(
        request,
        "crfs/visit.html",
        {
            "study": patient.study,
            "patient": patient,
            "visit": visit,
            "visit_name": patient.protocol_version.protocol.visit(visit.code).name,
            "rows": _visit_rows(
                visit, entries, locked={lock.entry_id for lock in locks if lock.entry_id}
            ),
            # For the cards other apps add to the page (the review's SDV): no query of theirs.
            "entries": entries,
            "actions": actions,
            "date_form": date_form,
            "missed_form": missed_form,
            "can_enter": can_enter,
            "can_correct": Action.CORRECT in actions and not held,
            "locks": locks_shown(locks, protocol=patient.protocol_version.protocol),
            "can_lock": bool(actions & {Action.FREEZE, Action.LOCK}),
            "can_unlock": Action.UNLOCK in actions,
            "order_problem": visit_order_problem(visit),
            "deviations": deviations,
        },
    )


@dataclass(frozen=True)
class ListedForm:
    """A form instance as the visit page lists it, read from the form index."""

    pk: int
    status: str
    status_label: str
    key_label: str  # a repeatable form's instance: its culture condition
    missing: str  # in progress: what is still missing, briefly
    locked: bool = False  # frozen or locked on its own (a form-level lock)


# The locks that hold over a whole visit: none of its forms can change.
WHOLE_VISIT = (
    DataLock.Level.STUDY,
    DataLock.Level.SITE,
    DataLock.Level.PATIENT,
    DataLock.Level.VISIT,
)


def _visit_rows(visit: Visit, entries: list[FormIndexEntry], *, locked=frozenset()) -> list[tuple]:
    """(code, label, repeatable, instances, required, lacks) for each form of the visit.

    `entries` are the visit's form index entries (one query for every form); only the
    instances still in progress are read from their tables (one query per such form), to
    say what they miss. `locked`: the index entries frozen or locked on their own.
    """
    patient = visit.patient
    protocol = patient.protocol_version.protocol
    required = set(visit_required_forms(visit))
    rows = []
    for code in visit_forms(visit):
        spec = protocol.form(code)
        model = form_model(code)
        mine = [e for e in entries if e.form_code == code]
        pending = [e.object_id for e in mine if e.status != FormIndexEntry.Status.COMPLETE]
        unfinished = (
            {crf.pk: crf for crf in model.objects.filter(pk__in=pending)} if pending else {}
        )
        keys = dict(model._meta.get_field(model.INDEX_KEY).flatchoices) if model.INDEX_KEY else {}
        listed = [
            ListedForm(
                pk=e.object_id,
                status=e.status,
                status_label=e.get_status_display(),
                key_label=str(keys.get(e.key, e.key)),
                missing=missing_text(unfinished[e.object_id], brief=True)
                if e.object_id in unfinished
                else "",
                locked=e.pk in locked,
            )
            for e in mine
        ]
        # A repeatable form says which of its instances (culture conditions) are still due.
        lacks = []
        if spec.repeatable and code in required:
            if required_keys(patient, code):
                lacks = [str(keys.get(k, k)) for k in keys_lacking(patient, code, entries)]
            elif visit_lacks(patient, code, entries):
                lacks = [str(model._meta.verbose_name)]
        rows.append((code, spec.label, spec.repeatable, listed, code in required, lacks))
    return rows


def _posted_stale(request, instance) -> bool:
    """A POST made from another version than the current one.

    Checked before the answers, so the second of two people is told at once (and not first
    asked for a reason for change on a form they never saw saved); crf_save checks again
    under its row lock.
    """
    try:
        posted = int(request.POST.get("version", ""))
    except ValueError:
        return False  # missing or not a number: the form (or crf_save) answers
    return posted != (instance.version if instance is not None else 0)


def _errors_once(form) -> None:
    """Each message once: a rule checked item by item (one database check per cytokine)
    gives the same sentence for each item, which says nothing more the second time."""
    for errors in form.errors.values():
        seen, kept = set(), []
        for error in errors.as_data():
            text = " ".join(error.messages)
            if text not in seen:
                seen.add(text)
                kept.append(error)
        errors.data[:] = kept


def _crf_form(request, visit: Visit, form_code: str, instance, warnings=()):
    patient = visit.patient
    data = request.POST if request.method == "POST" else None
    needs_reason = instance is not None
    model = form_model(form_code)
    form = crf_form(model, data, instance=instance, patient=patient)
    if "condition" in form.fields:
        # Only the conditions of the participant's group (the protocol's laboratory
        # section), and a refusal that names them; a stored one stays shown to be corrected.
        allowed = set(culture_conditions(patient)) | {getattr(instance, "condition", "")}
        field = form.fields["condition"]
        field.choices = [(v, label) for v, label in field.choices if v == "" or v in allowed]
        field.error_messages["invalid_choice"] = condition_message(patient).replace("%", "%%")
    if "serum_donor" in form.fields:
        if not set(SERUM_CONDITIONS) & set(culture_conditions(patient)):
            # The group is never cultured in another participant's serum.
            del form.fields["serum_donor"]
        else:
            # SSc participants of the same study whom the user may see: never a list of
            # every patient of the installation, nor the patient themself.
            field = form.fields["serum_donor"]
            field.queryset = (
                Patient.objects.visible_to(request.user)
                .filter(pk__in=serum_donors(patient).values("pk"))
                .order_by("subject_code")
            )
            field.error_messages["invalid_choice"] = serum_donor_message(patient).replace("%", "%%")
    if instance is None and data is None:
        # E.g. the kit the patient was allocated (the number only, never the arm).
        form.initial.update(model.initial_values(patient))
    form.setup_crf(form_code=form_code, needs_reason=needs_reason, warnings=warnings)
    if data is None:
        form.fields["version"].initial = instance.version if instance else 0
    return form


@login_required
@require_http_methods(["GET", "POST"])
def crf_edit(request, study_code, subject_code, code, repeat, form_code, instance_id=None):
    visit = _visit(request, study_code, subject_code, code, repeat)
    patient = visit.patient
    try:
        instance = crf_for_visit(visit=visit, form_code=form_code, instance_id=instance_id)
    except (FormNotInVisit, KeyError):
        raise Http404 from None
    # Changing a saved form is a correction, filling in a new one an entry.
    can_enter = can(request.user, Action.CORRECT if instance else Action.ENTER, patient=patient)
    if request.method == "GET" and visit.status == Visit.Status.PLANNED:
        # Said up front, with the way to date it, rather than refused after typing.
        return render(
            request,
            "crfs/visit_not_dated.html",
            {"study": patient.study, "patient": patient, "visit": visit, "can_enter": can_enter},
        )
    form = _crf_form(request, visit, form_code, instance)
    if request.method == "POST":
        if not can_enter:
            raise PermissionDenied
        if _posted_stale(request, instance):
            return _stale_crf(request, visit, form_code, instance_id, form)
        if form.is_valid():
            try:
                saved = crf_save(
                    visit=visit,
                    form_code=form_code,
                    values=form.values(),
                    by=request.user,
                    expected_version=form.cleaned_data.get("version"),
                    reason=form.cleaned_data.get("reason", ""),
                    confirmed=form.confirmed_warnings(),
                    instance_id=instance_id,
                )
            except StaleVersion:
                return _stale_crf(request, visit, form_code, instance_id, form)
            except FormNotInVisit:
                raise Http404 from None
            except WarningsPending as exc:
                form = _crf_form(request, visit, form_code, instance, warnings=exc.warnings)
                form.is_valid()
                for warning in exc.warnings:
                    form.add_error(f"confirm_{warning.code}", warning.message)
            except ValidationError as exc:
                if hasattr(exc, "error_dict"):
                    for field, errors in exc.error_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    form.add_error(None, exc)
            else:
                if instance is not None and saved.version == instance.version:
                    messages.success(request, _("Saved with no change."))
                elif saved.status == saved.Status.COMPLETE:
                    messages.success(request, _("Form saved."))
                else:
                    messages.warning(
                        request,
                        _("Form saved, still in progress: missing %s.") % missing_text(saved),
                    )
                warning = baseline_warning(
                    saved, patient.protocol_version.protocol.form_label(form_code)
                )
                if warning:
                    messages.warning(request, warning)
                return redirect("crfs:visit", study_code, subject_code, code, repeat)
    model = form_model(form_code)
    _errors_once(form)
    # Frozen or locked (the study, the site, the casebook, the visit or this form): said up
    # front, without a Save button; crf_save refuses the change anyway.
    lock = active_lock(patient=patient, visit=visit, entry=instance)
    refusal = ""
    if lock is not None:
        can_enter = False
        refusal = lock_message(lock, protocol=patient.protocol_version.protocol)
        if refusal in form.non_field_errors():  # refused just now: said once
            refusal = ""
    return render(
        request,
        "crfs/form.html",
        {
            "study": patient.study,
            "patient": patient,
            "visit": visit,
            "form": form,
            "form_code": form_code,
            "label": patient.protocol_version.protocol.form_label(form_code),
            "instance": instance,
            "missing": (
                missing_text(instance)
                if instance is not None and instance.status != instance.Status.COMPLETE
                else ""
            ),
            "can_enter": can_enter,
            "lock_message": refusal,
            "lock_kind": lock.kind if lock is not None else "",
            "live_fields": model.LIVE_TOTAL,
            # The saved form's totals from the first view, not only after a change.
            "live_values": live_values(instance) if instance is not None else None,
            "preview_url": reverse(
                "crfs:preview", args=[study_code, subject_code, code, repeat, form_code]
            ),
        },
    )


@login_required
@require_POST
def crf_preview(request, study_code, subject_code, code, repeat, form_code):
    """The derived values (totals, bands, points) for the answers typed so far (htmx)."""
    visit = _visit(request, study_code, subject_code, code, repeat)
    try:
        crf_for_visit(visit=visit, form_code=form_code)
    except (FormNotInVisit, KeyError):
        raise Http404 from None
    model = form_model(form_code)
    form = crf_form_class(model)(request.POST)
    form.setup_crf(form_code=form_code, needs_reason=False)
    form.is_valid()
    probe = model()
    for name in form.fields:
        if name in form.cleaned_data and hasattr(probe, name):
            setattr(probe, name, form.cleaned_data[name])
    try:
        probe.compute_derived()
        values, problem = live_values(probe), None
    except ValueError as exc:  # an input the score refuses (ScoringInputError) is shown
        values, problem = [], str(exc)
    return render(request, "crfs/_live.html", {"values": values, "problem": problem})


def live_values(instance) -> list[tuple[str, object]]:
    """The derived values the live box shows: label and value, a choice by its label."""
    model = type(instance)
    values = []
    for name in model.LIVE_TOTAL:
        field = model._meta.get_field(name)
        value = getattr(instance, name)
        if field.choices:
            # A band or a conclusion reads as its label ("Moderate effect"), not its code.
            value = getattr(instance, f"get_{name}_display")() if value else None
        values.append((field.verbose_name, value))
    return values
