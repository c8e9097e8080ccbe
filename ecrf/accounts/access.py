"""Who may see which site: the one place that knows it.

Every model's `visible_to(user)` builds its filter from `scope(user)`. A membership
gives a role in one study, at one site or (data managers, admins) at all its sites.
The filters are `EXISTS` subqueries on the membership table, so scoping costs no
extra query and never goes stale within a request.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q


class Role:
    INVESTIGATOR = "investigator"
    COORDINATOR = "coordinator"
    MONITOR = "monitor"
    DATA_MANAGER = "data_manager"
    ADMIN = "admin"

    ALL_SITES = frozenset({DATA_MANAGER, ADMIN})
    SITE_STAFF = frozenset({INVESTIGATOR, COORDINATOR})
    # Roles that read the audit trail (compliance: monitors and data managers).
    AUDIT_READERS = frozenset({MONITOR, DATA_MANAGER, ADMIN})


NOTHING = Q(pk__in=[])


@dataclass(frozen=True)
class Scope:
    user_id: int | None

    def _memberships(self):
        from ecrf.accounts.models import Membership

        return Membership.objects.filter(user_id=self.user_id, active=True)

    def study_filter(self, study_field: str) -> Q:
        """Rows whose study the user belongs to (any role, any site)."""
        if self.user_id is None:
            return NOTHING
        return Q(Exists(self._memberships().filter(study_id=OuterRef(study_field))))

    def site_filter(self, study_field: str, site_field: str, roles=None) -> Q:
        """Rows at a site the user may see in that study, optionally for some roles only."""
        if self.user_id is None:
            return NOTHING
        memberships = self._memberships().filter(study_id=OuterRef(study_field))
        if roles is not None:
            memberships = memberships.filter(role__in=roles)
        memberships = memberships.filter(Q(site__isnull=True) | Q(site_id=OuterRef(site_field)))
        return Q(Exists(memberships))


def scope(user) -> Scope:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Scope(user_id=None)
    return Scope(user_id=user.pk)


def roles_for(user, *, study, site=None) -> set[str]:
    """The user's roles in a study at a site (all-site roles included)."""
    from ecrf.accounts.models import Membership

    if scope(user).user_id is None:
        return set()
    memberships = Membership.objects.filter(user=user, study=study, active=True)
    if site is not None:
        memberships = memberships.filter(Q(site__isnull=True) | Q(site=site))
    return set(memberships.values_list("role", flat=True))


def can_see_allocation(user, *, study) -> bool:
    """Unblinded users see the arm; for an open study everybody with access does."""
    from ecrf.accounts.models import Membership

    if not study.blinded:
        return bool(roles_for(user, study=study))
    if scope(user).user_id is None:
        return False
    return Membership.objects.filter(user=user, study=study, active=True, unblinded=True).exists()
