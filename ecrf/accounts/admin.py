"""The admin of accounts and of the studies' configuration, every page audited and scoped
(`ecrf.audit.admin.AuditedAdmin`).

The studies app sits below accounts: its rows are scoped by memberships, so its admin pages
are registered here, with the membership-based scoping of `ecrf.accounts.access`.
"""

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef

from ecrf.accounts.access import sites_visible_to, studies_visible_to
from ecrf.accounts.models import Membership, User
from ecrf.audit.admin import REASON_FIELD, AuditedAdmin, ReasonField
from ecrf.audit.context import audited
from ecrf.studies.models import ProtocolVersion, Site, Study, StudySite, StudyUnblinding


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


class PasswordChangeWithReason(AdminPasswordChangeForm):
    """The admin's password form, with the reason for change every admin save asks."""

    reason = ReasonField()


@admin.register(User)
class UserAdmin(AuditedAdmin, BaseUserAdmin):
    list_display = ["username", "first_name", "last_name", "email", "is_active", "is_staff"]
    change_password_form = PasswordChangeWithReason
    change_user_password_template = "admin/accounts/change_password_with_reason.html"  # nosec B105  # a template name

    def user_change_password(self, request, id, form_url=""):
        """A password set by an administrator is an audited event (AuthEvent
        PASSWORD_RESET) with who and why; without a valid reason the form refuses it."""
        reason = request.POST.get(REASON_FIELD, "") if request.method == "POST" else ""
        with audited(by=request.user, reason=" ".join(reason.split())):
            return super().user_change_password(request, id, form_url)

    def scoped(self, request, queryset):
        """The accounts holding a membership in a study the user belongs to."""
        shared = Membership.objects.visible_to(request.user).filter(user_id=OuterRef("pk"))
        return queryset.filter(Exists(shared))


@admin.register(Membership)
class MembershipAdmin(AuditedAdmin):
    """Roles are granted and withdrawn here; each change asks for a reason (audited).

    Memberships are deactivated rather than deleted, so the trail keeps who had access.
    """

    fields = ["user", "study", "site", "role", "unblinded", "active"]
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

    def has_delete_permission(self, request, obj=None):
        return False


class StudySiteInline(admin.TabularInline):
    model = StudySite
    extra = 0
    readonly_fields = ["last_subject_number"]
    autocomplete_fields = ["site"]


@admin.register(Study)
class StudyAdmin(AuditedAdmin):
    """`blinded` is shown, never edited: a study is unblinded by its administrator after the
    database lock (`ecrf.review.study_unblinding`), with a password and a reason."""

    list_display = ["code", "acronym", "design", "blinded", "target_enrolment"]
    readonly_fields = ["blinded"]
    search_fields = ["code", "acronym", "title"]
    inlines = [StudySiteInline]

    def scoped(self, request, queryset):
        return queryset.filter(pk__in=studies_visible_to(request.user).values("pk"))

    def has_add_permission(self, request):
        # A study comes from its protocol file (`manage.py load_protocol`), blinding included.
        return False


@admin.register(Site)
class SiteAdmin(AuditedAdmin):
    list_display = ["code", "name", "city", "timezone"]
    search_fields = ["code", "name", "city"]

    def scoped(self, request, queryset):
        return queryset.filter(pk__in=sites_visible_to(request.user).values("pk"))


class _ReadOnly:
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ProtocolVersion)
class ProtocolVersionAdmin(_ReadOnly, AuditedAdmin):
    """Protocol versions come from `load_protocol`; the admin only shows them."""

    list_display = ["study", "version", "effective_date", "loaded_at", "loaded_by", "sha256"]
    list_filter = ["study"]

    def scoped(self, request, queryset):
        return queryset.filter(study__in=studies_visible_to(request.user).values("pk"))


@admin.register(StudyUnblinding)
class StudyUnblindingAdmin(_ReadOnly, AuditedAdmin):
    """Written by the study unblinding screen only."""

    list_display = ["study", "at", "by", "reason"]

    def scoped(self, request, queryset):
        return queryset.filter(study__in=studies_visible_to(request.user).values("pk"))


# Two-factor devices are enrolled by their owner and reset by an administrator with a reason
# (`two_factor.two_factor_reset`), both audited: django-otp's own admin pages, which edit
# and delete them with no reason, are withdrawn.
for _label, _model in (("otp_totp", "TOTPDevice"), ("otp_static", "StaticDevice")):
    if apps.is_installed(f"django_otp.plugins.{_label}"):
        _device = apps.get_model(_label, _model)
        if admin.site.is_registered(_device):
            admin.site.unregister(_device)
