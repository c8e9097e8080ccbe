from __future__ import annotations

import pghistory
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    """What a membership lets a person do, per study and site (see `permissions.py`)."""

    INVESTIGATOR = "investigator", _("Investigator")
    COORDINATOR = "coordinator", _("Coordinator")
    MONITOR = "monitor", _("Monitor")
    DATA_MANAGER = "data_manager", _("Data manager")
    ADMIN = "admin", _("Administrator")


# Roles held for every site of a study at once: their membership names no site.
ALL_SITE_ROLES = frozenset({Role.DATA_MANAGER, Role.ADMIN})


def account_id(user) -> int | None:
    """The id of a logged-in, active account; None for anyone else (anonymous, deactivated)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    return user.pk


class Language(models.TextChoices):
    # Each in its own language: the reader picks the one they read.
    FRENCH = "fr", "Français"
    ENGLISH = "en", "English"


@pghistory.track(exclude=["password", "last_login"])
class User(AbstractUser):
    """A person's own account (never shared). Roles come from memberships."""

    language = models.CharField(
        _("language"),
        max_length=5,
        choices=Language.choices,
        default=Language.FRENCH,
        help_text=_(
            "The language of the emails you receive; saving it here also switches your screens."
        ),
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        full_name = self.get_full_name()
        return f"{full_name} ({self.username})" if full_name else self.username


class MembershipQuerySet(models.QuerySet):
    def held_by(self, user_id: int | None) -> MembershipQuerySet:
        """The active memberships of an account (none without one)."""
        if user_id is None:
            return self.none()
        return self.filter(user_id=user_id, active=True)

    def visible_to(self, user) -> MembershipQuerySet:
        """The memberships of the studies the user belongs to."""
        mine = Membership.objects.held_by(account_id(user)).filter(study_id=OuterRef("study_id"))
        return self.filter(Exists(mine))


@pghistory.track()
class Membership(models.Model):
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
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
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
                    models.Q(role__in=sorted(ALL_SITE_ROLES), site__isnull=True)
                    | (~models.Q(role__in=sorted(ALL_SITE_ROLES)) & models.Q(site__isnull=False))
                ),
                name="membership_site_matches_role",
            ),
        ]

    def __str__(self) -> str:
        where = self.site.code if self.site_id else _("all sites")
        return f"{self.user} – {self.get_role_display()} – {self.study.code} ({where})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.role in ALL_SITE_ROLES and self.site_id:
            raise ValidationError(
                {
                    "site": _(
                        "Data managers and administrators cover all sites: leave the site empty."
                    )
                }
            )
        if self.role not in ALL_SITE_ROLES and not self.site_id:
            raise ValidationError({"site": _("This role needs a site.")})
        if (
            self.site_id
            and self.study_id
            and not self.study.study_sites.filter(site_id=self.site_id).exists()
        ):
            raise ValidationError({"site": _("This site does not take part in the study.")})
