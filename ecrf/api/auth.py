"""DRF's side of the tokens: authentication, the rate limit per token, the audit context.

`Authorization: Bearer <key>` (or `Token <key>`) authenticates as the token's owner; a
signed-in browser session works too, for the browsable pages and the interactive docs,
with Django's CSRF check on writes. A session of an account that needs a second factor
must have passed it, as the screens ask.
"""

from __future__ import annotations

import pghistory
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling

from ecrf.accounts.two_factor import two_factor_required
from ecrf.api.tokens import TokenRefused, token_check


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode(errors="replace") not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                _("Authorization header: give the keyword Bearer, a space and the token.")
            )
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("This API token is not known.")) from None
        try:
            token = token_check(key)
        except TokenRefused as refused:
            raise exceptions.AuthenticationFailed(str(refused)) from None
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class VerifiedSessionAuthentication(authentication.SessionAuthentication):
    """Django's session, once its second factor is given where the role needs one."""

    def authenticate(self, request):
        found = super().authenticate(request)
        if found is None:
            return None
        user = found[0]
        verified = getattr(request._request.user, "is_verified", lambda: False)()
        if not verified and two_factor_required(user):
            raise exceptions.PermissionDenied(
                _("Your role needs two-factor login: give your code on the site first.")
            )
        return found


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """Calls per token (per account for a session), at the rate of API_THROTTLE_RATE."""

    scope = "api"

    def get_cache_key(self, request, view):
        if request.auth is not None and hasattr(request.auth, "pk"):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def client_name(request) -> str:
    token = request.auth
    return f"API token {token.name} ({token.prefix}…)" if hasattr(token, "prefix") else "API"


class AuditedApiMixin:
    """Every call runs in an audit context that says it came through the API, and from which
    client: the services' own context (user, reason) merges into it."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._audit = pghistory.context(
            user=request.user.pk if request.user.is_authenticated else None,
            via="api",
            client=client_name(request),
        )
        self._audit.__enter__()

    def dispatch(self, request, *args, **kwargs):
        self._audit = None
        try:
            response = super().dispatch(request, *args, **kwargs)
            # Study data, to a token the site's middleware does not see as signed in.
            add_never_cache_headers(response)
            return response
        finally:
            if self._audit is not None:
                self._audit.__exit__(None, None, None)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token, created on your profile page (ecrf_…).",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = VerifiedSessionAuthentication
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
