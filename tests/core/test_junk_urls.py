"""Junk in any address or parameter is a 404 or a 400, never a 500.

Every URL pattern the project serves (found by walking the resolver, so a new page is
covered the day it is added) is requested with each junk value in each of its path
parts, and with junk in every query and form parameter the views read, by GET and by
POST, as an administrator of every site, as an investigator and as nobody.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

from ecrf.accounts.access import Role
from tests.factories import MembershipFactory, UserFactory

# Raw values: each is percent-encoded into the address (so "\x00" travels as %00).
JUNK = (
    "\x00",
    "a\x00b",
    "\x01\x1f\x7f",
    "x" * 5000,
    "../../etc/passwd",
    "-1",
    "9" * 40,
    "' OR '1'='1",
    "<script>alert(1)</script>",
    "\u00e9\u4e2d\U0001f600",
    " ",
)
# Raw bytes put into the address as they are: invalid UTF-8 and a double-encoded NUL.
RAW_SEGMENTS = ("%ff", "%c3%28", "%2500")
# Parameters the views read (request.GET/POST) and the forms' common names.
PARAMETERS = (
    "page", "q", "site", "study", "next", "alert", "version", "versions", "text", "field",
    "level", "action", "status", "reason", "password", "code", "date", "value", "sort",
    "language", "visit", "form", "arm", "group", "subject_code", "comment", "answer",
    "email", "sites", "role", "download", "new_password1", "new_password2",
)  # fmt: skip
_GROUP = re.compile(r"\(\?P<(\w+)>")


def _regex_to_template(regex: str) -> str:
    """`^(?P<app_label>auth|x)/(?P<pk>.+)/$` -> `{app_label}/{pk}/` (balanced groups)."""
    out, i = [], 0
    regex = regex.removeprefix("^").removesuffix("$").removesuffix("\\Z")
    while i < len(regex):
        match = _GROUP.match(regex, i)
        if match:
            depth, j = 1, match.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(regex[j], 0) if regex[j - 1] != "\\" else 0
                j += 1
            out.append("{" + match.group(1) + "}")
            i = j
        elif regex[i] == "\\":
            out.append(regex[i + 1])
            i += 2
        elif regex[i] in "?*+^$":
            i += 1
        else:
            out.append(regex[i])
            i += 1
    return "".join(out)


def _route_to_template(route: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def _templates(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        if isinstance(pattern, RoutePattern):
            part = _route_to_template(str(pattern._route))
        elif isinstance(pattern, RegexPattern):
            part = _regex_to_template(pattern._regex)
        else:  # LocalePrefixPattern and the like: no parameters.
            part = str(pattern)
        if isinstance(entry, URLResolver):
            yield from _templates(entry, prefix + part)
        elif isinstance(entry, URLPattern):
            yield prefix + part


def test_the_walk_finds_every_page_with_its_parameters():
    templates = set(_templates())
    assert "studies/{study_code}/patients/{subject_code}/" in templates
    assert "studies/{study_code}/patients/{subject_code}/visits/{code}/{repeat}/" in templates
    assert "admin/{app_label}/" in templates
    assert len(templates) > 40


# The values also tried in each path part in turn, the others real (fewer: it is slow).
IN_TURN = (quote("\x00"), quote("x" * 5000), "9" * 40, "%ff", quote("' OR '1'='1"), "..")


def _fill(template: str, junk: str, real: dict[str, str]) -> list[str]:
    """The address with every parameter junk, then (for the IN_TURN values) with each
    parameter junk in turn and the others real, so junk deep in a valid address reaches
    its view."""
    names = re.findall(r"\{(\w+)\}", template)
    urls = ["/" + template.format(**{name: junk for name in names})]
    for name in names if junk in IN_TURN else ():
        values = {other: real.get(other, "1") for other in names}
        values[name] = junk
        urls.append("/" + template.format(**values))
    return urls


def _addresses(real: dict[str, str]) -> list[str]:
    junks = [quote(value, safe="") for value in JUNK] + list(RAW_SEGMENTS)
    urls = []
    for template in sorted(set(_templates())):
        for junk in junks:
            urls.extend(_fill(template, junk, real))
        urls.append("/" + template.format_map(_Real(real)))
    return list(dict.fromkeys(urls))


class _Real(dict):
    def __missing__(self, key):
        return "1"


# Query and form values: a NUL (refused before any view), then the other junk spread over
# the parameters (one request carries them all: the sweep stays a few minutes long).
MIXED = ("9" * 40, "-1", "x" * 5000, "' OR '1'='1", "\ufffd", "../..", "0", "%00", " ")


def _junk_parameters(round_: int) -> dict[str, str]:
    if round_ == 0:
        return dict.fromkeys(PARAMETERS, "a\x00b")
    return {name: MIXED[(i + round_) % len(MIXED)] for i, name in enumerate(PARAMETERS)}


def _personas(world):
    admin = UserFactory(username="ada", is_staff=True, is_superuser=True)
    for study in (world.rct, world.cohort):
        MembershipFactory(user=admin, study=study, site=None, role=Role.ADMIN)
    return {"admin": admin, "investigator": world.alice, "anonymous": None}


def _check(client: Client, user, urls, parameters) -> list[str]:
    """Each address by GET and POST; a logged-in persona stays logged in (the sweep posts
    to the logout page too) and in English (and to the language switch)."""
    failures = []
    for url in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(url, parameters)
            if response.status_code >= 500:
                failures.append(f"{method.upper()} {url[:120]} -> {response.status_code}")
            if user is not None and "logout" in url:
                client.force_login(user)
    return failures


@pytest.mark.parametrize("persona", ["admin", "investigator", "anonymous"])
def test_junk_in_any_path_part_is_never_a_server_error(world, persona):
    user = _personas(world)[persona]
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    patient = world.bxp_patients[0]
    real = {"study_code": world.rct.code, "subject_code": patient.subject_code}
    urls = _addresses(real)
    assert "/studies/NCT00479934/patients/%00/" in urls
    failures = _check(client, user, urls, {})
    assert failures == [], "\n".join(failures[:40])


@pytest.mark.parametrize("persona", ["admin", "investigator", "anonymous"])
def test_junk_in_any_parameter_is_never_a_server_error(world, persona):
    user = _personas(world)[persona]
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    patient = world.bxp_patients[0]
    real = {"study_code": world.rct.code, "subject_code": patient.subject_code}
    urls = sorted({"/" + t.format_map(_Real(real)) for t in _templates()})
    failures = []
    for round_ in range(3):
        failures += _check(client, user, urls, _junk_parameters(round_))
    assert failures == [], "\n".join(failures[:40])


def test_a_nul_byte_in_a_subject_code_is_a_400_not_a_500(client, world):
    client.force_login(world.alice)
    response = client.get("/studies/NCT00479934/patients/%00/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "The address or a value sent contains characters that are not allowed." in (
        response.content.decode()
    )


def test_a_nul_byte_in_a_parameter_is_a_400(client, world):
    client.force_login(world.alice)
    response = client.get("/studies/NCT00479934/patients/", {"page": "1\x00"})
    assert response.status_code == 400
