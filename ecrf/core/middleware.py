"""Middleware of our own: junk refused before any view reads it, and no copy of a signed-in
page in any cache.

Junk: PostgreSQL refuses a NUL byte in any text value ("text fields cannot contain NUL"),
so an address such as `/studies/X/patients/%00/` used to reach the lookup of a subject
code and end as a 500. No address, query parameter or form value of this application has
a reason to hold a control character: the address may hold none (C0 and DEL), a value none
but the tab and the line breaks a text area sends.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest, HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext

_IN_ADDRESS = re.compile(r"[\x00-\x1f\x7f]")
_IN_VALUE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _junk_in(querydict) -> bool:
    return any(
        _IN_VALUE.search(key) or any(_IN_VALUE.search(value) for value in values)
        for key, values in querydict.lists()
    )


def has_junk(request: HttpRequest) -> bool:
    """Whether the address, a query parameter or a form field holds a control character."""
    if _IN_ADDRESS.search(request.path_info) or _junk_in(request.GET):
        return True
    if request.method == "POST":
        try:
            return _junk_in(request.POST)
        except MultiPartParserError:
            return True
    return False


class RefuseControlCharactersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if has_junk(request):
            if request.path_info.startswith("/api/"):
                # The API's clients read JSON, in the API's one shape of refusal.
                return JsonResponse(
                    {"detail": gettext("The address or a value holds a control character."),
                     "errors": {}},
                    status=400,
                )  # fmt: skip
            return HttpResponseBadRequest(
                render_to_string("400.html", {"request": request}, request=request)
            )
        return self.get_response(request)


class NoStoreForSignedInUsers:
    """`Cache-Control: no-store` on every response to a signed-in user.

    Every page behind the login shows study data (the study chooser counts patients, the
    menus name the study; the lists, forms, audit trail, exports and their htmx fragments
    show the patients'), so one rule for all of them rather than a decorator per view that
    the next view would forget. Static files never reach it (whitenoise answers them
    first, cacheable for ever under their hashed names); the login page is Django's own
    `never_cache` view.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response


class SessionIdleExpiry:
    """Pushes a signed-in session's idle expiry (SESSION_COOKIE_AGE from its last save)
    forward at most once every SESSION_REFRESH_SECONDS, instead of Django's
    SESSION_SAVE_EVERY_REQUEST, which writes the session row (a write transaction, its
    commit waiting for the disk) on every page. A session then expires between
    SESSION_COOKIE_AGE - SESSION_REFRESH_SECONDS and SESSION_COOKIE_AGE after its last
    request. Inside SessionMiddleware, which saves a session marked modified."""

    KEY = "_refreshed_at"

    @classmethod
    def on_login(cls, sender, request, user, **kwargs) -> None:
        """The login saves the session: its expiry is fresh, no write on the next page."""
        if getattr(request, "session", None) is not None:
            request.session[cls.KEY] = int(timezone.now().timestamp())

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is None or session.session_key is None or session.modified:
            return response
        now = int(timezone.now().timestamp())
        if now - session.get(self.KEY, 0) >= settings.SESSION_REFRESH_SECONDS:
            session[self.KEY] = now
        return response
