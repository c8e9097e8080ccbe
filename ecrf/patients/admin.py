from django.contrib import admin

from ecrf.audit.admin import AuditedAdmin
from ecrf.patients.models import Patient


@admin.register(Patient)
class PatientAdmin(AuditedAdmin):
    """Read-only in the admin: patients are created and changed through the eCRF screens,
    where the protocol rules and reasons for change apply."""

    list_display = ["subject_code", "study", "site", "status", "screening_date", "day0_date"]
    list_filter = ["study", "site", "status"]
    search_fields = ["subject_code"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
