"""The account's memberships read once per request; no study page for a monitor, data
manager or administrator before the second factor."""

from __future__ import annotations

from urllib.parse import urlencode

from django.shortcuts import redirect

from ecrf.accounts.access import memberships_per_request
from ecrf.accounts.two_factor import confirmed_totp_device, two_factor_required

# What a signed-in person may reach before the second factor: logging in and out, the
# two-factor pages themselves, the language switch and the health check. (Static files
# never get here: whitenoise serves them first.)
OPEN_VIEWS = frozenset({"login", "logout", "set_language", "health"})
# The API answers for itself, in JSON: its session authentication refuses (403) a session
# that has not given the second factor its role needs, and its tokens need a device.
OPEN_NAMESPACES = frozenset({"two_factor", "api"})


class MembershipsPerRequest:
    """The roles a page asks about (access.held) come from one read of the account's
    memberships per request, not one query per button; a membership saved during the
    request is read again."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with memberships_per_request():
            return self.get_response(request)


class TwoFactorRequiredMiddleware:
    """After django-otp's OTPMiddleware: redirects an account that needs a second factor
    and has not given one in this session, to enrolment (no device yet) or to the code.

    One query for a signed-in request (django-otp's device when verified, the roles when
    not); none for anonymous ones, which the views send to the login page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        match = request.resolver_match
        if match.view_name in OPEN_VIEWS or OPEN_NAMESPACES & set(match.namespaces):
            return None
        if not two_factor_required(user):
            return None
        target = "two_factor:verify" if confirmed_totp_device(user) else "two_factor:setup"
        response = redirect(target)
        response["Location"] += "?" + urlencode({"next": request.get_full_path()})
        return response
