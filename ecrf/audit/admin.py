"""The Django admin, audited like every other door: who, why, and only what one may see.

`AuditedAdmin` is the base of every registered ModelAdmin:

- a save asks for a reason (a required "reason" field added to the admin's form, however
  the admin builds it), and the save, its inlines included, runs in that audit context
  (`audited`), so the pghistory events carry the user and the reason;
- a delete asks for a reason on its confirmation page; without one it is refused with a
  message and nothing is deleted. The bulk "delete selected" action is withdrawn: one
  reason per row deleted;
- the lists and pages are site-scoped like every other read: for anyone but a superuser,
  the rows go through the model's `visible_to(user)` (an admin whose model has none
  overrides `scoped`; without either, a non-superuser sees nothing).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ecrf.audit.context import audited
from ecrf.audit.models import AuthEvent
from ecrf.core.reasons import reason_problem

REASON_FIELD = "reason"
REASON_HELP = gettext_lazy("At least 10 characters; kept in the audit trail with your name.")


def _clean_reason(value: str) -> str:
    value = " ".join((value or "").split())
    if problem := reason_problem(value, label=_("Reason for change")):
        raise ValidationError(problem)
    return value


class ReasonField(forms.CharField):
    def __init__(self, **kwargs):
        super().__init__(
            label=gettext_lazy("Reason for change"),
            max_length=1000,
            widget=forms.Textarea(attrs={"rows": 2}),
            help_text=REASON_HELP,
            error_messages={
                "required": gettext_lazy(
                    "Reason for change: give it; every change made in the admin is kept in "
                    "the audit trail with its reason."
                )
            },
            **kwargs,
        )

    def clean(self, value):
        return _clean_reason(super().clean(value))


class AuditedAdmin(admin.ModelAdmin):
    delete_confirmation_template = "admin/audited_delete_confirmation.html"

    # -- scoping ---------------------------------------------------------------------------

    def scoped(self, request, queryset):
        """The rows a non-superuser may see: the model's own scoping."""
        visible_to = getattr(queryset, "visible_to", None)
        return visible_to(request.user) if visible_to is not None else queryset.none()

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return self.scoped(request, queryset)

    # -- the reason for a save -------------------------------------------------------------

    def _base_form(self, obj):
        add_form = getattr(self, "add_form", None)  # UserAdmin's form for a new user
        return add_form if obj is None and add_form is not None else self.form

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = kwargs.pop("form", None) or self._base_form(obj)
        if REASON_FIELD not in getattr(base, "declared_fields", {}):
            base = type(base.__name__, (base,), {REASON_FIELD: ReasonField()})
        return super().get_form(request, obj, change=change, form=base, **kwargs)

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if not self.has_change_permission(request, obj) and obj is not None:
            return fieldsets  # a read-only page saves nothing
        named = {name for _title, options in fieldsets for name in _flat(options["fields"])}
        if REASON_FIELD not in named:
            fieldsets.append((_("Audit trail"), {"fields": [REASON_FIELD]}))
        return fieldsets

    def save_model(self, request, obj, form, change):
        with audited(by=request.user, reason=form.cleaned_data[REASON_FIELD]):
            super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        with audited(by=request.user, reason=form.cleaned_data[REASON_FIELD]):
            super().save_related(request, form, formsets, change)

    # -- the reason for a delete -----------------------------------------------------------

    def delete_view(self, request, object_id, extra_context=None):
        if request.method != "POST":
            return super().delete_view(request, object_id, extra_context)
        try:
            reason = _clean_reason(request.POST.get(REASON_FIELD, ""))
        except ValidationError as problem:
            messages.error(request, problem.messages[0])
            return HttpResponseRedirect(request.get_full_path())
        with audited(by=request.user, reason=f"deleted in the admin: {reason}"):
            return super().delete_view(request, object_id, extra_context)


# One reason per row deleted: the bulk action, which would take none, is withdrawn.
admin.site.disable_action("delete_selected")


def _flat(fields):
    for field in fields:
        if isinstance(field, list | tuple):
            yield from field
        else:
            yield field


@admin.register(AuthEvent)
class AuthEventAdmin(AuditedAdmin):
    """Account events are written by the system only; superusers read them here."""

    list_display = ["at", "kind", "username", "by", "ip_address"]
    list_filter = ["kind"]
    search_fields = ["username"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
