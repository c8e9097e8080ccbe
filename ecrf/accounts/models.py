from __future__ import annotations

import pghistory
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from ecrf.accounts.access import Role, scope


@pghistory.track(exclude=["password", "last_login"])
class User(AbstractUser):
    """A person's own account (never shared). Roles come from memberships."""

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        full_name = self.get_full_name()
        return f"{full_name} ({self.username})" if full_name else self.username


class MembershipQuerySet(models.QuerySet):
    def visible_to(self, user) -> MembershipQuerySet:
        return self.filter(scope(user).study_filter("study_id"))


@pghistory.track()
class Membership(models.Model):
    class RoleChoices(models.TextChoices):
        INVESTIGATOR = Role.INVESTIGATOR, _("Investigator")
        COORDINATOR = Role.COORDINATOR, _("Coordinator")
        MONITOR = Role.MONITOR, _("Monitor")
        DATA_MANAGER = Role.DATA_MANAGER, _("Data manager")
        ADMIN = Role.ADMIN, _("Administrator")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    study = models.ForeignKey("studies.Study", on_delete=models.PROTECT, related_name="memberships")
    site = models.ForeignKey(
        "studies.Site",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="memberships",
        help_text=_("Empty for data managers and administrators: all sites of the study."),
    )
    role = models.CharField(_("role"), max_length=20, choices=RoleChoices.choices)
    unblinded = models.BooleanField(
        _("may see allocation"),
        default=False,
        help_text=_("Sees the treatment arm of a blinded study. Grant sparingly."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["study", "user__username", "role"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "study", "site", "role"],
                name="unique_membership",
                nulls_distinct=False,
            ),
            # Site staff and monitors work at named sites; data managers and admins at all.
            models.CheckConstraint(
                condition=(
                    models.Q(role__in=sorted(Role.ALL_SITES), site__isnull=True)
                    | (~models.Q(role__in=sorted(Role.ALL_SITES)) & models.Q(site__isnull=False))
                ),
                name="membership_site_matches_role",
            ),
        ]

    def __str__(self) -> str:
        where = self.site.code if self.site_id else _("all sites")
        return f"{self.user} – {self.get_role_display()} – {self.study.code} ({where})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.role in Role.ALL_SITES and self.site_id:
            raise ValidationError(
                {
                    "site": _(
                        "Data managers and administrators cover all sites: leave the site empty."
                    )
                }
            )
        if self.role not in Role.ALL_SITES and not self.site_id:
            raise ValidationError({"site": _("This role needs a site.")})
        if (
            self.site_id
            and self.study_id
            and not self.study.study_sites.filter(site_id=self.site_id).exists()
        ):
            raise ValidationError({"site": _("This site does not take part in the study.")})
