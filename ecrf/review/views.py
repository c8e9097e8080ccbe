"""Review pages: the patient's audit trail; freezing, locking and lifting data.

The pages ask the permission table for their buttons; the services (`ecrf.review.locks`)
ask it again and decide. Another site's patient, visit or lock is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from ecrf.accounts.access import can_see_allocation, scope
from ecrf.accounts.permissions import Action, actions_for, can, roles_allowed
from ecrf.patients.locks import STRONGEST_FIRST, casebook_locks, locks_shown, visit_locks
from ecrf.patients.models import DataLock, Visit
from ecrf.patients.selectors import patient_for, study_for
from ecrf.review.audit_trail import patient_audit_trail
from ecrf.review.forms import LockForm, SiteLockForm, StudyUnblindForm, UnlockForm
from ecrf.review.locks import data_freeze, data_lock, data_unlock, study_lock_checklist
from ecrf.review.study_unblinding import database_lock, study_unblind
from ecrf.studies.models import Site

LOCK_ACTIONS = frozenset({Action.FREEZE, Action.LOCK, Action.UNLOCK})
PLACE = {DataLock.Kind.FREEZE: data_freeze, DataLock.Kind.LOCK: data_lock}
LIFTED_SHOWN = 20


@login_required
def patient_audit(request, study_code: str, subject_code: str):
    study = study_for(request.user, study_code)
    patient = patient_for(request.user, study, subject_code)
    if not can(request.user, Action.READ_AUDIT, patient=patient):
        raise PermissionDenied
    entries = patient_audit_trail(
        patient=patient, unblinded=can_see_allocation(request.user, study=study)
    )
    return render(
        request,
        "audit/patient_trail.html",
        {"study": study, "patient": patient, "entries": entries, "skipped": entries.skipped},
    )


def _placed_message(lock: DataLock, target: str) -> str:
    if lock.kind == DataLock.Kind.LOCK:
        return _("%(target)s locked: nothing can change any more.") % {"target": target}
    return _("%(target)s frozen: data cannot change; review goes on.") % {"target": target}


def _place(request, form, **target):
    """Freeze or lock from a valid form; the service's refusal becomes the form's errors."""
    try:
        lock = PLACE[form.cleaned_data["kind"]](
            by=request.user, reason=form.cleaned_data["reason"], **target
        )
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.error_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc)
        return None
    return lock


# -- the study and its sites ------------------------------------------------------------------


def _lock_sites(user, study):
    """The study's sites where the user may freeze or lock."""
    roles = roles_allowed(Action.FREEZE) | roles_allowed(Action.LOCK)
    return Site.objects.filter(
        scope(user).site_filter("study_sites__study_id", "id", roles=roles),
        study_sites__study=study,
    ).distinct()


@login_required
@require_http_methods(["GET", "POST"])
def study_locks(request, study_code: str):
    """The study's freezes and locks, the pre-lock checklist, and the forms to freeze or
    lock a site or the whole study (the database lock)."""
    study = study_for(request.user, study_code)
    if not actions_for(request.user, study=study) & LOCK_ACTIONS:
        raise PermissionDenied
    study_wide = actions_for(request.user, study=study, every_site=True) & LOCK_ACTIONS
    sites = _lock_sites(request.user, study)
    posted = request.POST.get("level") if request.method == "POST" else None
    study_form = LockForm(request.POST if posted == "study" else None, prefix="study")
    site_form = SiteLockForm(request.POST if posted == "site" else None, prefix="site", sites=sites)
    if posted == "study" and study_form.is_valid():
        if lock := _place(request, study_form, study=study):
            messages.success(request, _placed_message(lock, _("Study %s") % study.code))
            return redirect("review:locks", study.code)
    elif posted == "site" and site_form.is_valid():
        site = site_form.cleaned_data["site"]
        if lock := _place(request, site_form, study=study, site=site):
            messages.success(request, _placed_message(lock, _("Site %s") % site.code))
            return redirect("review:locks", study.code)
    protocol = study.current_protocol.protocol
    held = (
        DataLock.objects.visible_to(request.user)
        .filter(study=study)
        .select_related("placed_by", "lifted_by", "study", "site", "patient", "visit")
        .select_related("entry__visit")
    )
    in_place = locks_shown(held.active().order_by(*STRONGEST_FIRST), protocol=protocol)
    lifted = locks_shown(
        held.filter(lifted_at__isnull=False).order_by("-lifted_at")[:LIFTED_SHOWN],
        protocol=protocol,
    )
    can_wide = {
        "freeze": Action.FREEZE in study_wide,
        "lock": Action.LOCK in study_wide,
    }
    return render(
        request,
        "review/locks.html",
        {
            "study": study,
            "in_place": in_place,
            "lifted": lifted,
            "study_form": study_form if can_wide["freeze"] or can_wide["lock"] else None,
            "site_form": site_form,
            "checklist": study_lock_checklist(study) if can_wide["lock"] else None,
            "can_unlock": Action.UNLOCK in actions_for(request.user, study=study),
        },
        status=400 if posted else 200,
    )


# -- a casebook, a visit ------------------------------------------------------------------------


def _target_page(request, *, study, patient, title, locks, form, back_url, actions):
    return render(
        request,
        "review/target_locks.html",
        {
            "study": study,
            "patient": patient,
            "title": title,
            "locks": locks_shown(locks, protocol=patient.protocol_version.protocol),
            "form": form if actions & {Action.FREEZE, Action.LOCK} else None,
            "can_unlock": Action.UNLOCK in actions,
            "back_url": back_url,
        },
        status=400 if form.is_bound else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def casebook_lock(request, study_code: str, subject_code: str):
    """Freeze or lock a patient's casebook; the freezes and locks over it."""
    study = study_for(request.user, study_code)
    patient = patient_for(request.user, study, subject_code)
    actions = actions_for(request.user, patient=patient) & LOCK_ACTIONS
    if not actions:
        raise PermissionDenied
    form = LockForm(request.POST if request.method == "POST" else None)
    title = _("Casebook of %s") % patient.subject_code
    if form.is_bound and form.is_valid() and (lock := _place(request, form, patient=patient)):
        messages.success(request, _placed_message(lock, title))
        return redirect("patients:detail", study.code, patient.subject_code)
    return _target_page(
        request,
        study=study,
        patient=patient,
        title=title,
        locks=casebook_locks(patient),
        form=form,
        back_url=reverse("patients:detail", args=[study.code, patient.subject_code]),
        actions=actions,
    )


@login_required
@require_http_methods(["GET", "POST"])
def visit_lock(request, study_code: str, subject_code: str, code: str, repeat: int):
    """Freeze or lock a visit; the freezes and locks over it and its forms."""
    study = study_for(request.user, study_code)
    visit = get_object_or_404(
        Visit.objects.visible_to(request.user).select_related(
            "patient__site", "patient__study", "patient__protocol_version"
        ),
        patient__study=study,
        patient__subject_code=subject_code,
        code=code,
        repeat=repeat,
    )
    patient = visit.patient
    actions = actions_for(request.user, patient=patient) & LOCK_ACTIONS
    if not actions:
        raise PermissionDenied
    form = LockForm(request.POST if request.method == "POST" else None)
    label = f"{visit.code} #{visit.repeat}" if visit.repeat > 1 else visit.code
    title = _("Visit %(visit)s of %(patient)s") % {"visit": label, "patient": patient.subject_code}
    back_url = reverse("crfs:visit", args=[study.code, patient.subject_code, code, repeat])
    if form.is_bound and form.is_valid() and (lock := _place(request, form, visit=visit)):
        messages.success(request, _placed_message(lock, title))
        return redirect(back_url)
    return _target_page(
        request,
        study=study,
        patient=patient,
        title=title,
        locks=visit_locks(visit),
        form=form,
        back_url=back_url,
        actions=actions,
    )


# -- lifting ----------------------------------------------------------------------------------


def _page_of(lock: DataLock) -> str:
    """Where a lock's target is seen: the study's locks, the casebook, the visit."""
    study = lock.study.code
    visit = lock.visit if lock.visit_id else (lock.entry.visit if lock.entry_id else None)
    if visit is not None:
        return reverse(
            "crfs:visit", args=[study, lock.patient.subject_code, visit.code, visit.repeat]
        )
    if lock.patient_id:
        return reverse("patients:detail", args=[study, lock.patient.subject_code])
    return reverse("review:locks", args=[study])


@login_required
@require_http_methods(["GET", "POST"])
def lock_lift(request, study_code: str, lock_id: int):
    """Lift a freeze or a lock, with the reason."""
    study = study_for(request.user, study_code)
    lock = get_object_or_404(
        DataLock.objects.visible_to(request.user)
        .select_related(
            "placed_by", "lifted_by", "study", "site", "patient__protocol_version", "visit"
        )
        .select_related("entry__visit"),
        study=study,
        pk=lock_id,
    )
    if lock.level == DataLock.Level.STUDY:
        allowed = can(request.user, Action.UNLOCK, study=study, every_site=True)
    else:
        allowed = can(request.user, Action.UNLOCK, study=study, site=lock.site_id)
    if not allowed:
        raise PermissionDenied
    back = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = ""
    back = back or _page_of(lock)
    form = UnlockForm(request.POST if request.method == "POST" else None)
    shown = locks_shown(
        [lock], protocol=lock.patient.protocol_version.protocol if lock.patient_id else None
    )[0]
    if form.is_bound and form.is_valid() and lock.lifted_at is None:
        try:
            data_unlock(by=request.user, lock=lock, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc)
        else:
            if lock.kind == DataLock.Kind.LOCK:
                text = _("%(target)s: the lock is lifted.")
            else:
                text = _("%(target)s: the freeze is lifted.")
            messages.success(request, text % {"target": shown.target})
            return redirect(back)
    return render(
        request,
        "review/unlock.html",
        {"study": study, "shown": shown, "locks": [shown], "form": form, "back_url": back},
        status=400 if form.is_bound else 200,
    )


# -- the whole study ----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def study_unblind_view(request, study_code: str):
    """The administrator unblinds the whole study, after the database lock: the reason, their
    password and a confirmation; the service decides (`study_unblind`)."""
    study = study_for(request.user, study_code)
    if not can(request.user, Action.UNBLIND_STUDY, study=study, every_site=True):
        raise PermissionDenied(_("Only the study's administrator may unblind the whole study."))
    form = StudyUnblindForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid() and study.blinded:
        try:
            study_unblind(
                study=study,
                by=request.user,
                password=form.cleaned_data["password"],
                reason=form.cleaned_data["reason"],
                request=request,
            )
        except ValidationError as refused:
            for field, errors in refused.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(
                request,
                _("Study %(code)s unblinded: every member now sees the arms; the sponsor is told.")
                % {"code": study.code},
            )
            return redirect("studies:chooser")
    return render(
        request,
        "review/study_unblind.html",
        {"study": study, "form": form, "lock": database_lock(study)},
        status=400 if request.method == "POST" else 200,
    )
