"""A person's own account settings, an administrator's unlock of a locked-out account, and
the study administrators' management of people: invitations, role changes and withdrawals
(memberships), each with a reason, audited."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.utils.translation import gettext as _

from ecrf.accounts.lockout import attempts_reset, locked_until
from ecrf.accounts.models import ALL_SITE_ROLES, Language, Membership, Role, User
from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audited
from ecrf.audit.models import AuthEvent
from ecrf.core.reasons import reason_problem
from ecrf.notifications.services import email_queue
from ecrf.studies.models import StudySite


def user_language_set(*, user: User, language: str) -> User:
    """The language of the user's emails and screens; only the user sets their own."""
    if language not in Language.values:
        raise ValidationError({"language": _("Choose French or English.")}, code="invalid_language")
    with transaction.atomic(), audited(by=user, reason="language changed by the user"):
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.language != language:
            locked.language = language
            locked.save(update_fields=["language"])
    user.language = language
    return user


def account_unlock(*, user: User, by, reason: str) -> int:
    """Let a locked-out person in again before the lockout ends by itself; returns the
    failed attempts forgotten.

    An administrator of one of the user's studies may (a superuser for any account), never
    for their own account, and only with a reason: the unlock is an audited account event.
    """
    if not (by.is_active and by.is_superuser):
        study_ids = sorted(
            set(Membership.objects.held_by(user.pk).values_list("study_id", flat=True))
        )
        refusal = PermissionDenied(
            _("Only a superuser may unlock %(username)s: the account belongs to no study.")
            % {"username": user.get_username()}
        )
        for study_id in study_ids:
            try:
                require(by, Action.UNLOCK_ACCOUNT, study=study_id, every_site=True)
            except PermissionDenied as exc:
                refusal = exc
            else:
                break
        else:
            raise refusal
    if by.pk == user.pk:
        raise PermissionDenied(
            _("You cannot unlock your own account: ask another administrator of your study.")
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(
            {
                "reason": _(
                    "Reason: say why the account is unlocked; it is kept in the audit trail."
                )
            },
            code="reason_required",
        )
    if locked_until(user.get_username()) is None:
        raise ValidationError(
            _("Account: %(username)s is not locked; there is nothing to unlock.")
            % {"username": user.get_username()},
            code="not_locked",
        )
    with transaction.atomic():
        forgotten = attempts_reset(user.get_username())
        AuthEvent.objects.create(
            kind=AuthEvent.Kind.UNLOCK,
            user=user,
            username=user.get_username(),
            by=by,
            reason=reason[:300],
        )
    return forgotten


# -- user management by a study's administrators ---------------------------------------------
#
# An administrator invites a person by email to a study with a role (and sites, for the roles
# held site by site), changes a role or withdraws an access, each with a reason, without the
# Django admin. The invitee's account is created inactive, without a password; the emailed
# link (Django's password-reset token: single use, it changes with the password, and expires
# after PASSWORD_RESET_TIMEOUT) lets them choose one, which activates the account.


def _reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if problem := reason_problem(reason, label=_("Reason")):
        raise ValidationError({"reason": problem})
    return reason


def _sites_for(study, role: str, sites) -> list:
    sites = list(sites)
    if role not in Role.values:
        raise ValidationError({"role": _("Role: choose one of the roles listed.")})
    if role in ALL_SITE_ROLES:
        if sites:
            raise ValidationError(
                {
                    "sites": _(
                        "Sites: data managers and administrators cover all sites; choose none."
                    )
                }
            )
        return [None]
    if not sites:
        raise ValidationError({"sites": _("Sites: choose at least one site of the study.")})
    taking_part = set(StudySite.objects.filter(study=study).values_list("site_id", flat=True))
    if any(site.pk not in taking_part for site in sites):
        raise ValidationError({"sites": _("Sites: choose sites that take part in the study.")})
    return sites


def invitation_link(user: User) -> str:
    """The link an invitee opens to choose a password (valid once, for a limited time)."""
    path = reverse(
        "invitation_accept",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return settings.SITE_URL.rstrip("/") + path


def user_invite(*, by, study, email: str, role: str, sites=(), reason: str) -> User:
    """Give a person a role in the study at these sites (none for the all-site roles).

    A new address gets an inactive account and an emailed link to choose a password; an
    existing account gets the memberships and an email saying so.
    """
    # Administrators hold all sites of their study: the action is asked at every site.
    require(by, Action.MANAGE_USERS, study=study, every_site=True)
    email = email.strip()
    try:
        validate_email(email)
        if len(email) > User._meta.get_field("username").max_length:
            raise ValidationError("too long")  # the address is the account's name
    except ValidationError:
        raise ValidationError({"email": _("Email: give a valid address.")}) from None
    reason = _reason(reason)
    where = _sites_for(study, role, sites)
    with transaction.atomic(), audited(by=by, reason=reason):
        user = User.objects.select_for_update().filter(email__iexact=email).first()
        invited = user is None
        if user is not None and not user.is_active:
            if user.has_usable_password():
                user.is_active = True  # an account closed earlier, given access again
                user.save(update_fields=["is_active"])
            else:
                invited = True  # never accepted: a new link
        if user is None:
            user = User(username=email.lower(), email=email, is_active=False)
            user.set_unusable_password()
            try:
                with transaction.atomic():
                    user.save()
            except IntegrityError:
                raise ValidationError(
                    {"email": _("Email: an account already uses this address as its name.")}
                ) from None
        for site in where:
            membership, created = Membership.objects.get_or_create(
                user=user, study=study, site=site, role=role, defaults={"active": True}
            )
            if not created and membership.active:
                raise ValidationError(
                    {"role": _("Role: this person already holds this role there.")}
                )
            if not created:
                membership.active = True
                membership.save(update_fields=["active"])
        if invited:
            subject = _("Invitation to %(study)s") % {"study": study.code}
            body = _(
                "You are invited to the study %(study)s as %(role)s.\n\n"
                "Choose your password here (the link works once): %(link)s\n"
            ) % {"study": study.code, "role": Role(role).label, "link": invitation_link(user)}
        else:
            subject = _("New access to %(study)s") % {"study": study.code}
            body = _("You now have the role %(role)s in the study %(study)s.\n") % {
                "study": study.code,
                "role": Role(role).label,
            }
        email_queue(
            dedupe_key=f"invite:{user.pk}:{study.pk}:{role}:{timezone.now().isoformat()}",
            kind="invitation",
            recipients=[email],
            subject=subject,
            body=body,
        )
    return user


def invitation_user(uidb64: str, token: str) -> User | None:
    """The invited account the link names, if the link is still good (else None)."""
    try:
        pk = int(force_str(urlsafe_base64_decode(uidb64)))
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None
    if not 0 < pk < 2**63:
        return None
    user = User.objects.filter(pk=pk, is_active=False, last_login__isnull=True).first()
    if user is None or user.has_usable_password():
        return None
    if not user.memberships.filter(active=True).exists():
        return None  # withdrawn before it was accepted
    return user if default_token_generator.check_token(user, token) else None


def invitation_accept(*, user: User, password: str) -> User:
    """The invitee chose their password (already validated): the account is active."""
    with transaction.atomic(), audited(by=user, reason="invitation accepted"):
        locked = User.objects.select_for_update().get(pk=user.pk)
        locked.set_password(password)
        locked.is_active = True
        locked.save(update_fields=["password", "is_active"])
    return locked


def membership_deactivate(*, by, membership: Membership, reason: str) -> Membership:
    """Withdraw a person's role at a site (or all sites); their account closes with their
    last active membership. The row stays: the review keeps who had access, and when."""
    require(by, Action.MANAGE_USERS, study=membership.study_id, every_site=True)
    reason = _reason(reason)
    if membership.user_id == by.pk:
        raise ValidationError(_("You cannot withdraw your own access: ask another administrator."))
    with transaction.atomic(), audited(by=by, reason=reason):
        locked = Membership.objects.select_for_update().get(pk=membership.pk)
        if not locked.active:
            raise ValidationError(_("This access is already withdrawn."))
        locked.active = False
        locked.save(update_fields=["active"])
        user = User.objects.select_for_update().get(pk=locked.user_id)
        if not user.memberships.filter(active=True).exists() and not user.is_superuser:
            user.is_active = False
            if not user.has_usable_password():
                user.set_unusable_password()  # a pending invitation link dies with it
            user.save(update_fields=["is_active", "password"])
    return locked


def membership_role_change(*, by, membership: Membership, role: str, reason: str) -> Membership:
    """Change the role of an active membership, at the same place: a site role stays at its
    site; a change between a site role and an all-site role is an invitation instead."""
    require(by, Action.MANAGE_USERS, study=membership.study_id, every_site=True)
    reason = _reason(reason)
    if role not in Role.values:
        raise ValidationError({"role": _("Role: choose one of the roles listed.")})
    if membership.user_id == by.pk:
        raise ValidationError(_("You cannot change your own role: ask another administrator."))
    if (role in ALL_SITE_ROLES) != (membership.role in ALL_SITE_ROLES):
        raise ValidationError(
            {
                "role": _(
                    "Role: data managers and administrators cover all sites, the other roles "
                    "one site; withdraw this access and invite the person with the new role."
                )
            }
        )
    with transaction.atomic(), audited(by=by, reason=reason):
        locked = Membership.objects.select_for_update().get(pk=membership.pk)
        if not locked.active:
            raise ValidationError(_("This access is withdrawn: invite the person again."))
        if locked.role == role:
            return locked
        locked.role = role
        try:
            with transaction.atomic():
                locked.save(update_fields=["role"])
        except IntegrityError:
            raise ValidationError(
                {"role": _("Role: this person already holds this role there.")}
            ) from None
    return locked
