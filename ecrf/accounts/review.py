"""The access review of a study (ICH E6(R3) §4.3.3): who holds which role at which site,
since when, their last login and whether they log in with a second factor."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.utils.translation import gettext as _

from ecrf.accounts.models import Membership


def has_second_factor(user) -> bool | None:
    """Whether the user has a confirmed django-otp device (None: two-factor login is not
    installed, so nobody has one to show)."""
    if not apps.is_installed("django_otp"):
        return None
    from django_otp import user_has_device

    return user_has_device(user, confirmed=True)


@dataclass(frozen=True)
class AccessRow:
    membership_id: int
    name: str
    username: str
    email: str
    role: str
    role_label: str
    site: str
    unblinded: bool
    active: bool
    account_active: bool
    since: datetime
    last_login: datetime | None
    second_factor: bool | None


def access_review(study) -> list[AccessRow]:
    """Every membership of the study, active first, by person: one query, plus one per
    person for the second factor."""
    memberships = (
        Membership.objects.filter(study=study)
        .select_related("user", "site")
        .order_by("-active", "user__last_name", "user__username", "role", "site__code")
    )
    factors: dict[int, bool | None] = {}
    rows = []
    for membership in memberships:
        user = membership.user
        if user.pk not in factors:
            factors[user.pk] = has_second_factor(user)
        rows.append(
            AccessRow(
                membership_id=membership.pk,
                name=user.get_full_name(),
                username=user.username,
                email=user.email,
                role=membership.role,
                role_label=str(membership.get_role_display()),
                site=membership.site.code if membership.site_id else _("all sites"),
                unblinded=membership.unblinded,
                active=membership.active,
                account_active=user.is_active,
                since=membership.created_at,
                last_login=user.last_login,
                second_factor=factors[user.pk],
            )
        )
    return rows


def _yes_no(value: bool | None) -> str:
    return "" if value is None else (_("Yes") if value else _("No"))


def access_review_csv(study, rows: list[AccessRow], *, reviewed_at: datetime) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("Access review"), study.code, reviewed_at.isoformat()])
    writer.writerow(
        [
            _("Name"),
            _("Username"),
            _("Email"),
            _("Role"),
            _("Site"),
            _("May see allocation"),
            _("Access active"),
            _("Account active"),
            _("Since"),
            _("Last login"),
            _("Two-factor login"),
        ]
    )
    for row in rows:
        writer.writerow(
            [
                row.name,
                row.username,
                row.email,
                row.role_label,
                row.site,
                _yes_no(row.unblinded),
                _yes_no(row.active),
                _yes_no(row.account_active),
                row.since.isoformat(),
                row.last_login.isoformat() if row.last_login else "",
                _yes_no(row.second_factor),
            ]
        )
    return out.getvalue()
