"""Who may do what to a site's data: the permission table, and the one function that reads it.

Every write service asks `require(by, action, patient=...)` (or `study=..., site=...`)
before it writes anything, so a screen, the admin, a Celery task or the API meet the same
rule; views ask `can(...)`, or `actions_for(...)` once for several buttons, to decide what
to show. A membership gives one role in a study, at one site or (data managers and
administrators) at all of them: what a role may do at a site is the table below.

Blinding is not in the table: whether someone sees the allocation is the membership's
`unblinded` flag (`access.can_see_allocation`), checked beside the role where an action
shows or uses an arm (allocation lists).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ecrf.accounts.access import roles_at_every_site, roles_for
from ecrf.accounts.models import Role


class Action(models.TextChoices):
    # The labels complete "Your role does not allow you to ...".
    VIEW = "view", gettext_lazy("see the site's patients and their data")
    READ_AUDIT = "read_audit", gettext_lazy("read the audit trail")
    ENTER = "enter", gettext_lazy("enter data")
    CORRECT = "correct", gettext_lazy("correct saved data")
    ENROL = "enrol", gettext_lazy("screen, enrol or end the participation of patients")
    RANDOMISE = "randomise", gettext_lazy("randomise patients")
    UNBLIND = "unblind", gettext_lazy("unblind a patient in an emergency")
    UNBLIND_STUDY = "unblind_study", gettext_lazy("unblind the whole study after its database lock")
    RECORD_AE = "record_ae", gettext_lazy("record adverse events")
    SUBMIT_SAE = "submit_sae", gettext_lazy("submit SAE reports")
    ACKNOWLEDGE_SAE = "acknowledge_sae", gettext_lazy("acknowledge SAE reports for the sponsor")
    MANAGE_ALLOCATION_LISTS = "manage_allocation_lists", gettext_lazy("manage allocation lists")
    RECEIVE_REMINDERS = "receive_reminders", gettext_lazy("receive the site's visit reminders")
    READ_REMINDER_LOG = "read_reminder_log", gettext_lazy("read the reminders sent")
    # Review and export.
    RAISE_QUERY = "raise_query", gettext_lazy("raise queries")
    ANSWER_QUERY = "answer_query", gettext_lazy("answer queries")
    CLOSE_QUERY = "close_query", gettext_lazy("close queries")
    SDV = "sdv", gettext_lazy("verify source data")
    FREEZE = "freeze", gettext_lazy("freeze data")
    LOCK = "lock", gettext_lazy("lock data")
    UNLOCK = "unlock", gettext_lazy("lift a freeze or a lock")
    SIGN = "sign", gettext_lazy("sign a visit or a casebook")
    EXPORT = "export", gettext_lazy("export data")
    # Accounts: a study administrator lets a locked-out member in again (account_unlock).
    UNLOCK_ACCOUNT = "unlock_account", gettext_lazy("unlock the accounts of the study's members")
    MANAGE_USERS = (
        "manage_users",
        gettext_lazy("invite people, change their roles or withdraw them"),
    )


# Actions no service performs yet: the table says who will, their services enforce it.
PLANNED: frozenset[Action] = frozenset()

_ROLES = (Role.INVESTIGATOR, Role.COORDINATOR, Role.MONITOR, Role.DATA_MANAGER, Role.ADMIN)
X, o = True, False

# fmt: off
_TABLE = {
    #                                investigator  coordinator  monitor  data_manager  admin
    Action.VIEW:                     (X,           X,           X,       X,            X),
    Action.READ_AUDIT:               (o,           o,           X,       X,            X),
    Action.ENTER:                    (X,           X,           o,       o,            o),
    Action.CORRECT:                  (X,           X,           o,       o,            o),
    Action.ENROL:                    (X,           X,           o,       o,            o),
    Action.RANDOMISE:                (X,           X,           o,       o,            o),
    Action.UNBLIND:                  (X,           o,           o,       o,            o),
    Action.UNBLIND_STUDY:            (o,           o,           o,       o,            X),
    Action.RECORD_AE:                (X,           X,           o,       o,            o),
    Action.SUBMIT_SAE:               (X,           o,           o,       o,            o),
    Action.ACKNOWLEDGE_SAE:          (o,           o,           o,       X,            X),
    Action.MANAGE_ALLOCATION_LISTS:  (o,           o,           o,       X,            X),
    Action.RECEIVE_REMINDERS:        (X,           X,           o,       o,            o),
    Action.READ_REMINDER_LOG:        (o,           o,           o,       X,            X),
    Action.RAISE_QUERY:              (o,           o,           X,       X,            o),
    Action.ANSWER_QUERY:             (X,           X,           o,       o,            o),
    Action.CLOSE_QUERY:              (o,           o,           X,       X,            o),
    Action.SDV:                      (o,           o,           X,       X,            o),
    Action.FREEZE:                   (o,           o,           o,       X,            o),
    Action.LOCK:                     (o,           o,           o,       X,            o),
    Action.UNLOCK:                   (o,           o,           o,       X,            o),
    Action.SIGN:                     (X,           o,           o,       o,            o),
    Action.EXPORT:                   (o,           o,           o,       X,            X),
    Action.UNLOCK_ACCOUNT:           (o,           o,           o,       o,            X),
    Action.MANAGE_USERS:             (o,           o,           o,       o,            X),
}
# fmt: on

PERMISSIONS: Mapping[Action, frozenset[Role]] = MappingProxyType(
    {
        action: frozenset(role for role, allowed in zip(_ROLES, row, strict=True) if allowed)
        for action, row in _TABLE.items()
    }
)


def roles_allowed(action: Action) -> frozenset[Role]:
    """The roles that may take this action (for a filter on the membership table)."""
    return PERMISSIONS[action]


def allowed_actions(roles) -> frozenset[Action]:
    """What any of these roles may do."""
    return frozenset(action for action, allowed in PERMISSIONS.items() if allowed & set(roles))


def _where(patient, study, site):
    if patient is not None:
        return patient.study_id, patient.site_id
    if study is None:
        raise TypeError("say where: a patient, or a study and a site")
    return study, site


def actions_for(
    user, *, patient=None, study=None, site=None, every_site: bool = False
) -> frozenset[Action]:
    """Everything the user may do to a patient, or at a site of a study (one query).

    Without a site: what the user may do at one site of the study at least, for a button
    that leads to a page where the site is chosen. With `every_site`: what the user may do
    at every site of the study at once (a study-wide act such as the database lock).
    """
    if every_site:
        if patient is not None or site is not None or study is None:
            raise TypeError("every_site: give the study only")
        return allowed_actions(roles_at_every_site(user, study=study))
    study, site = _where(patient, study, site)
    return allowed_actions(roles_for(user, study=study, site=site))


def can(
    user, action: Action, *, patient=None, study=None, site=None, every_site: bool = False
) -> bool:
    """Whether the user may take the action on the patient, or at the site (one query)."""
    return action in actions_for(
        user, patient=patient, study=study, site=site, every_site=every_site
    )


def require(
    by, action: Action, *, patient=None, study=None, site=None, every_site: bool = False
) -> None:
    """Refuse (PermissionDenied) unless `by` may take the action on the patient or at the site.

    A write service calls this before it writes anything. A study-wide act (the database
    lock) gives the study and `every_site=True`: the user must hold the action at every
    site of the study.
    """
    if not every_site:
        study, site = _where(patient, study, site)
        if site is None:
            raise TypeError("a write happens at a site: give the patient or the site")
    if not can(by, action, patient=None, study=study, site=site, every_site=every_site):
        roles = ", ".join(str(role.label).lower() for role in _ROLES if role in PERMISSIONS[action])
        label = Action(action).label
        raise PermissionDenied(
            _(
                "Your role does not allow you to %(action)s for the whole study (%(roles)s "
                "of every site only)."
            )
            % {"action": label, "roles": roles}
            if every_site
            else _("Your role does not allow you to %(action)s here (%(roles)s only).")
            % {"action": label, "roles": roles}
        )
