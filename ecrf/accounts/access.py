"""Who may see which site: the one place that knows it.

Every model's `visible_to(user)` builds its filter from `scope(user)`. A membership
gives a role in one study, at one site or (data managers, admins) at all its sites.
The filters are `EXISTS` subqueries on the membership table, so scoping costs no
extra query and never goes stale within a request. The roles a page asks about (its
buttons, the second factor, the arm) come from `held()`: the account's memberships, read
once per request (MembershipsPerRequest) and read again after any membership is saved.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import NamedTuple

from django.db.models import Exists, OuterRef, Q
from django.db.models.signals import post_delete, post_save

from ecrf.accounts.models import Membership, Role, account_id
from ecrf.studies.models import Site, Study, StudySite

# Role is defined with the membership that holds it; it is imported from here too.
__all__ = [
    "Held",
    "Role",
    "Scope",
    "can_see_allocation",
    "held",
    "memberships_per_request",
    "roles_at_every_site",
    "roles_for",
    "scope",
    "sites_visible_to",
    "studies_visible_to",
    "study_sites_visible_to",
]

NOTHING = Q(pk__in=[])


@dataclass(frozen=True)
class Scope:
    user_id: int | None

    def _memberships(self):
        return Membership.objects.held_by(self.user_id)

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
    return Scope(user_id=account_id(user))


# The studies app sits below accounts: its rows are scoped here, where memberships are known.


def studies_visible_to(user):
    """Studies in which the user holds at least one active membership."""
    return Study.objects.filter(scope(user).study_filter("id"))


def study_sites_visible_to(user):
    """The sites' participations in studies that the user may see."""
    return StudySite.objects.filter(scope(user).site_filter("study_id", "site_id"))


def sites_visible_to(user):
    """Sites the user may see in at least one study."""
    return Site.objects.filter(id__in=study_sites_visible_to(user).values("site_id"))


class Held(NamedTuple):
    """One active membership of an account."""

    study_id: int
    site_id: int | None
    role: str
    unblinded: bool


# Within a request: account id -> its memberships, once read (None: outside a request,
# where every call reads them).
_HELD: ContextVar[dict | None] = ContextVar("memberships_held", default=None)


@contextmanager
def memberships_per_request():
    """Each account's memberships read once inside the block (MembershipsPerRequest)."""
    token = _HELD.set({})
    try:
        yield
    finally:
        _HELD.reset(token)


def _forget_held(**kwargs) -> None:
    """A membership saved or deleted: read them all again, in this request too."""
    if _HELD.get() is not None:
        _HELD.get().clear()


post_save.connect(_forget_held, sender=Membership, dispatch_uid="access_forget_held_save")
post_delete.connect(_forget_held, sender=Membership, dispatch_uid="access_forget_held_delete")


def held(user) -> list[Held]:
    """The account's active memberships (one query, none more in the same request)."""
    user_id = account_id(user)
    if user_id is None:
        return []
    memo = _HELD.get()
    if memo is not None and user_id in memo:
        return memo[user_id]
    rows = [
        Held(*row)
        for row in Membership.objects.held_by(user_id).values_list(
            "study_id", "site_id", "role", "unblinded"
        )
    ]
    if memo is not None:
        memo[user_id] = rows
    return rows


def _pk(value) -> int | None:
    return getattr(value, "pk", value)


def roles_for(user, *, study, site=None) -> set[str]:
    """The user's roles in a study at a site (all-site roles included).

    `study` and `site` are objects or their ids. Without a site: the roles at any site.
    """
    study_id, site_id = _pk(study), _pk(site)
    return {
        m.role
        for m in held(user)
        if m.study_id == study_id and (site_id is None or m.site_id in (None, site_id))
    }


def roles_at_every_site(user, *, study) -> set[str]:
    """The roles the user holds at every site of a study: for a study-wide act (the lock of
    the whole study's data), which no single site's membership covers.

    An all-site membership (data managers, administrators) covers every site; roles held
    site by site count only when every participating site is covered. One query, two
    when the user holds site memberships.
    """
    study_id = _pk(study)
    mine = [(m.role, m.site_id) for m in held(user) if m.study_id == study_id]
    roles = {role for role, site_id in mine if site_id is None}
    by_role: dict[str, set[int]] = {}
    for role, site_id in mine:
        if site_id is not None and role not in roles:
            by_role.setdefault(role, set()).add(site_id)
    if by_role:
        sites = set(StudySite.objects.filter(study=study).values_list("site_id", flat=True))
        roles |= {role for role, covered in by_role.items() if sites and sites <= covered}
    return roles


def can_see_allocation(user, *, study) -> bool:
    """Unblinded users see the arm; for an open study everybody with access does.

    Orthogonal to the permission table: a role says what one may do, this flag what one
    may see of the allocation.
    """
    if not study.blinded:
        return bool(roles_for(user, study=study))
    return any(m.study_id == study.pk and m.unblinded for m in held(user))
