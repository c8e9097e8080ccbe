from django.contrib import admin

from ecrf.studies.models import ProtocolVersion, Site, Study, StudySite


class StudySiteInline(admin.TabularInline):
    model = StudySite
    extra = 0
    readonly_fields = ["last_subject_number"]
    autocomplete_fields = ["site"]


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["code", "acronym", "design", "blinded", "target_enrolment"]
    search_fields = ["code", "acronym", "title"]
    inlines = [StudySiteInline]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "city", "timezone"]
    search_fields = ["code", "name", "city"]


@admin.register(ProtocolVersion)
class ProtocolVersionAdmin(admin.ModelAdmin):
    """Protocol versions come from `load_protocol`; the admin only shows them."""

    list_display = ["study", "version", "effective_date", "loaded_at", "loaded_by", "sha256"]
    list_filter = ["study"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
