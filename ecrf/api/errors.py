"""Every refusal as one JSON body: `detail`, a sentence, and `errors`, the fields' messages.

DRF's own errors (parse, authentication, throttling, its serializers) and the services'
Django ValidationError and PermissionDenied come out the same way; a message names the
field by its label, as the screens do.
"""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import Http404
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler


def _messages(value) -> list[str]:
    """A field's messages as sentences, whatever DRF nested them in: a list item's are
    "Item 2: ...", a nested field's "name: ..."."""
    if isinstance(value, dict):
        return [
            _("Item %(number)s: %(message)s") % {"number": key + 1, "message": m}
            if isinstance(key, int)
            else f"{key}: {m}"
            for key, inner in value.items()
            for m in _messages(inner)
        ]
    if isinstance(value, list):
        return [m for item in value for m in _messages(item)]
    return [str(value)]


def _flat(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            ("non_field_errors" if key == NON_FIELD_ERRORS else str(key)): _messages(value)
            for key, value in detail.items()
        }
    if isinstance(detail, list):
        return {"non_field_errors": _messages(detail)}
    return {}


def _sentence(errors: dict[str, list[str]], fallback: str) -> str:
    messages = [m for ms in errors.values() for m in ms]
    return " ".join(messages) if messages else fallback


def error_body(detail: str, errors: dict[str, list[str]] | None = None) -> dict:
    return {"detail": detail, "errors": errors or {}}


def stale_response(label: str, version, *, current: dict, yours: dict) -> Response:
    """409: saved by someone else since `version` was read; the record as it is now beside
    what was sent, so that nothing typed is lost."""
    body = error_body(
        _("%(form)s: saved by someone else since version %(version)s was read: read it "
          "again, then send your changes with its version.")
        % {"form": capfirst(label), "version": version or 0},
    )  # fmt: skip
    body["current"], body["yours"] = current, yours
    return Response(body, status.HTTP_409_CONFLICT)


def validation_response(exc: ValidationError) -> Response:
    errors = (
        _flat(exc.message_dict)
        if hasattr(exc, "error_dict")
        else {"non_field_errors": [str(m) for m in exc.messages]}
    )
    return Response(error_body(_sentence(errors, _("The values were refused.")), errors), 400)


def exception_handler(exc, context):
    if isinstance(exc, ValidationError):
        return validation_response(exc)
    if isinstance(exc, Http404):
        return Response(error_body(_("Not found.")), status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        message = str(exc) or _("You do not have permission to do this.")
        return Response(error_body(message), status.HTTP_403_FORBIDDEN)
    response = drf_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flat(exc.detail)
        response.data = error_body(_sentence(errors, _("The values were refused.")), errors)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = error_body(str(detail))
    return response
