"""Personas across two sites of each study (after healthchecks' Alice/Bob/Charlie).

- alice: investigator at Bordeaux Pellegrin (BXP) in NCT00479934, owns the data;
- bob: coordinator at BXP, on her team;
- charlie: investigator at Strasbourg (STR): must see nothing of Bordeaux;
- monica: monitor of BXP only; diane: data manager of both studies (all sites);
- rene: investigator at Rennes in Sclero-JAK: sees nothing of the trial.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.test import Client, override_settings

from ecrf.accounts.access import Role
from ecrf.studies import loader
from ecrf.studies.loader import load_protocol
from ecrf.studies.models import Site, Study
from ecrf.studies.protocol import parse_protocol
from tests.clock import NOW_UTC
from tests.factories import MembershipFactory, PatientFactory, UserFactory
from tests.two_factor import force_login_verified

# The real-worker fixtures (tests marked `worker`), for every test module.
from tests.workers import celery_workers, racing_workers, redis_worker  # noqa: F401

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
def _force_login_gives_the_second_factor(monkeypatch):
    """`client.force_login(persona)` stands for a full login: for a monitor, data manager
    or administrator it gives the second factor too (tests/two_factor.py). The tests of
    the requirement log in with `login_unverified`."""
    monkeypatch.setattr(Client, "force_login", force_login_verified)


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


SEED_PROTOCOLS = (PROTOCOLS / "NCT00479934.yaml", PROTOCOLS / "NCT04206644.yaml")
SEED_CODES = ("NCT00479934", "NCT04206644")

# The seed protocols' rows are written once for the session, committed, not in each test:
# every test then starts on a database holding both studies, as after `load_protocol` on
# a fresh deployment. A transactional test flushes the database when it ends; the next
# test finds the rows missing and writes them again (`pytest_runtest_setup` below).
_seed = {"blocker": None, "tables": (), "real_clock": False}


def _write_seed_protocols(*, real_clock: bool) -> None:
    """Both seed protocols, loaded from their files as in production, committed.

    On the tests' clock, a minute before every test starts (as if loaded just before);
    for the real-worker tests, on the real clock, theirs.
    """
    travel = time_machine.travel(NOW_UTC - timedelta(minutes=1), tick=True)
    with (
        contextlib.nullcontext() if real_clock else travel,
        mock.patch.object(loader, "parse_protocol", _parse_cached),
    ):
        for path in SEED_PROTOCOLS:
            load_protocol(path)
    _seed["real_clock"] = real_clock


def _seed_protocols_present() -> bool:
    return Study.objects.filter(code__in=SEED_CODES).count() == len(SEED_CODES)


def _truncate_seed_tables() -> None:
    """Empty the tables the seed protocols wrote to (studies, sites, versions, their audit
    events and contexts). Inside a test's transaction this is rolled back with it."""
    quoted = ", ".join(connection.ops.quote_name(table) for table in _seed["tables"])
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {quoted} CASCADE")


def _row_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        counts = {}
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
        return counts


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The default test database, then both seed protocols in it, once for the session."""
    with django_db_blocker.unblock():
        before = _row_counts()
        _write_seed_protocols(real_clock=False)
        after = _row_counts()
    _seed["tables"] = tuple(sorted(t for t, n in after.items() if n != before.get(t, 0)))
    _seed["blocker"] = django_db_blocker
    yield
    _seed["blocker"] = None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before each test, once the test database exists: the seed protocols are there (a
    transactional test before this one flushed them), on the clock this test runs on."""
    blocker = _seed["blocker"]
    uses_db = item.get_closest_marker("django_db") or "_django_db_helper" in getattr(
        item, "fixturenames", ()
    )
    if blocker is None or not uses_db:
        return
    real_clock = item.get_closest_marker("worker") is not None
    with blocker.unblock():
        present = _seed_protocols_present()
        if present and _seed["real_clock"] == real_clock:
            return
        if present:
            # A real-worker test is transactional: its flush will empty these tables anyway.
            _truncate_seed_tables()
        _write_seed_protocols(real_clock=real_clock)


@pytest.fixture
def studies(db):
    """Both seed protocols' studies: their rows are loaded once per session (see
    `django_db_setup` above), their files read and validated once per session too."""
    return {
        "rct": Study.objects.get(code="NCT00479934"),
        "cohort": Study.objects.get(code="NCT04206644"),
    }


@pytest.fixture
def no_protocols(db):
    """A database without the seed protocols, for the tests of loading them: their rows are
    removed inside the test's transaction, so they are back for the next test."""
    _truncate_seed_tables()
    assert not Study.objects.exists()


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
