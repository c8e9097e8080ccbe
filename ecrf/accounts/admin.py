from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _

from ecrf.accounts.models import Membership, User
from ecrf.audit.context import audited


class KnownIdsAutocompleteSelect(AutocompleteSelect):
    """Django's autocomplete, minus the values no row could have: it looks the selected ids
    up as given, so `?site=abc` on the add page, or a posted `site=abc`, was a 500."""

    def optgroups(self, name, value, attr=None):
        kept = []
        for item in value:
            try:
                self.field.target_field.to_python(item)
            except ValidationError:
                continue
            kept.append(item)
        return super().optgroups(name, kept, attr)


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

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = KnownIdsAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        with audited(by=request.user, reason=form.cleaned_data["reason"]):
            super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None):
        return False


if apps.is_installed("django_otp.plugins.otp_totp"):
    from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin as _TOTPDeviceAdmin
    from django_otp.plugins.otp_totp.models import TOTPDevice

    class TOTPDeviceAdmin(_TOTPDeviceAdmin):
        """django-otp's own, with a 404 for a device that does not exist: its configuration
        and QR code pages read the device with .get(), a 500 for any other id."""

        def config_view(self, request, pk):
            get_object_or_404(TOTPDevice, pk=pk)
            return super().config_view(request, pk)

        def qrcode_view(self, request, pk):
            get_object_or_404(TOTPDevice, pk=pk)
            return super().qrcode_view(request, pk)

    admin.site.unregister(TOTPDevice)
    admin.site.register(TOTPDevice, TOTPDeviceAdmin)
