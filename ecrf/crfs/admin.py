from django.contrib import admin

from ecrf.audit.admin import AuditedAdmin
from ecrf.crfs.models import FORM_MODELS


class CrfAdmin(AuditedAdmin):
    """Read-only in the admin: forms are entered and changed through the eCRF screens,
    where the protocol, the optimistic lock and the reason for change apply."""

    list_display = ["patient", "visit", "status"]
    list_filter = ["status"]
    list_select_related = ["patient", "visit__patient"]
    search_fields = ["patient__subject_code"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


for model in FORM_MODELS.values():
    admin.site.register(model, CrfAdmin)
