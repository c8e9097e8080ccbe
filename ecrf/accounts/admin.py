from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from ecrf.accounts.models import Membership, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["study", "site"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "study", "site", "role", "unblinded", "active"]
    list_filter = ["study", "role", "unblinded", "active"]
    search_fields = ["user__username", "user__last_name", "site__code"]
    autocomplete_fields = ["user", "study", "site"]
