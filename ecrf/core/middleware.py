"""No copy of a signed-in page in any cache: browser, shared proxy or back button."""

from __future__ import annotations

from django.utils.cache import add_never_cache_headers


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
