"""The health check that a load balancer (or a monitoring probe) asks each web machine."""

from __future__ import annotations

from django.db import connection
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def health(request):
    """200 "ok" when this process answers and reaches its database: a bare view, no
    session or template, one `SELECT 1`. Open to anyone (it shows no data), over plain
    HTTP too (settings.SECURE_REDIRECT_EXEMPT), before any second factor."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")
