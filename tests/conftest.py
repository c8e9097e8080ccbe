"""Personas across two sites of each study (after healthchecks' Alice/Bob/Charlie).

- alice: investigator at Bordeaux Pellegrin (BXP) in NCT00479934, owns the data;
- bob: coordinator at BXP, on her team;
- charlie: investigator at Strasbourg (STR): must see nothing of Bordeaux;
- monica: monitor of BXP only; diane: data manager of both studies (all sites);
- rene: investigator at Rennes in Sclero-JAK: sees nothing of the trial.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import time_machine
from django.test import override_settings

from ecrf.accounts.access import Role
from ecrf.studies import loader
from ecrf.studies.loader import load_protocol
from ecrf.studies.models import Site, Study
from ecrf.studies.protocol import parse_protocol
from tests.clock import NOW_UTC
from tests.factories import MembershipFactory, PatientFactory, UserFactory

PROTOCOLS = Path(__file__).resolve().parent.parent / "ecrf" / "studies" / "protocols"


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """Argon2 costs ~0.15 s a hash by design, and every persona has a password: tests hash
    with MD5 (Django's advice for tests). Production's hasher is checked in
    tests/accounts/test_passwords.py against the settings module itself."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def fixed_clock(request):
    """Every test starts at tests.clock.NOW (15 December 2026, 10:00 in Paris): "today" is
    tests.clock.TODAY whatever day the suite runs. Time runs on from there (`tick`), so
    rows still get distinct, ordered timestamps and timeouts still expire; a test may
    move it with `fixed_clock.shift(...)` or `.move_to(...)`.

    The whole process travels, live_server threads included (the browser journeys and
    their sessions run on the same clock as the test). The real-worker tests keep the
    real clock: their Celery workers are other processes, which no travel reaches.
    """
    if request.node.get_closest_marker("worker"):
        yield None
        return
    with time_machine.travel(NOW_UTC, tick=True) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _celery_eager():
    """Unit tests run tasks in-process; the worker test starts a real worker instead."""
    from ecrf.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@functools.cache
def _parse_once(data: bytes, source: str):
    return parse_protocol(data, source=source)


def _parse_cached(data: bytes, *, source: str):
    # Keyed by the file's content: a changed file is parsed again. Protocol objects are
    # frozen (pydantic), so one parse can serve every test.
    return _parse_once(data, source)


@pytest.fixture
def studies(db):
    """Both seed protocols, loaded from their files as in production.

    Each file is read and validated once per session, not once per test (the YAML and
    pydantic validation are the same every time); its rows are written per test, inside
    the test's transaction, by the loader itself, so transactional tests, which flush the
    database, get them too.
    """
    with mock.patch.object(loader, "parse_protocol", _parse_cached):
        load_protocol(PROTOCOLS / "NCT00479934.yaml")
        load_protocol(PROTOCOLS / "NCT04206644.yaml")
    return {
        "rct": Study.objects.get(code="NCT00479934"),
        "cohort": Study.objects.get(code="NCT04206644"),
    }


@dataclass
class World:
    rct: Study
    cohort: Study
    bxp: Site
    str_: Site
    ren: Site
    alice: object
    bob: object
    charlie: object
    monica: object
    diane: object
    rene: object
    bxp_patients: list
    str_patients: list
    ren_patients: list


@pytest.fixture
def world(studies) -> World:
    rct, cohort = studies["rct"], studies["cohort"]
    bxp, str_, ren = (Site.objects.get(code=c) for c in ("BXP", "STR", "REN"))

    def member(username, memberships):
        user = UserFactory(username=username)
        for study, site, role in memberships:
            MembershipFactory(user=user, study=study, site=site, role=role)
        return user

    alice = member("alice", [(rct, bxp, Role.INVESTIGATOR)])
    bob = member("bob", [(rct, bxp, Role.COORDINATOR)])
    charlie = member("charlie", [(rct, str_, Role.INVESTIGATOR)])
    monica = member("monica", [(rct, bxp, Role.MONITOR)])
    diane = member("diane", [(rct, None, Role.DATA_MANAGER), (cohort, None, Role.DATA_MANAGER)])
    rene = member("rene", [(cohort, ren, Role.INVESTIGATOR)])
    return World(
        rct=rct,
        cohort=cohort,
        bxp=bxp,
        str_=str_,
        ren=ren,
        alice=alice,
        bob=bob,
        charlie=charlie,
        monica=monica,
        diane=diane,
        rene=rene,
        bxp_patients=[PatientFactory(study=rct, site=bxp, created_by=alice) for _ in range(3)],
        str_patients=[PatientFactory(study=rct, site=str_, created_by=charlie) for _ in range(2)],
        ren_patients=[
            PatientFactory(study=cohort, site=ren, created_by=rene, group=g) for g in ("SSC", "HD")
        ],
    )
