from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from ecrf.accounts.models import Membership, User
from ecrf.audit.context import audited


class MembershipAdminForm(forms.ModelForm):
    reason = forms.CharField(
        label=_("Reason for change"),
        max_length=300,
        help_text=_("Kept in the audit trail with the change."),
    )

    class Meta:
        model = Membership
        fields = ["user", "study", "site", "role", "unblinded", "active"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "first_name", "last_name", "email", "is_active", "is_staff"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Roles are granted and withdrawn here; each change asks for a reason (audited).

    Memberships are deactivated rather than deleted, so the trail keeps who had access.
    """

    form = MembershipAdminForm
    list_display = ["user", "study", "site", "role", "unblinded", "active"]
    list_filter = ["study", "role", "unblinded", "active"]
    search_fields = ["user__username", "user__last_name", "site__code"]
    autocomplete_fields = ["user", "study", "site"]

    def save_model(self, request, obj, form, change):
        with audited(by=request.user, reason=form.cleaned_data["reason"]):
            super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None):
        return False
