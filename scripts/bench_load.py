"""The load section of `make bench`: the production server on this machine, many users.

On the bench's throw-away database: the demo, BENCH_LOAD_PATIENTS patients of NCT00479934
with every form of their six visits filled (bench_exports.patients_generate), and
BENCH_LOAD_USERS investigators of Bordeaux (load.01, …), each with a patient of their own.
Then gunicorn with the production settings (DEBUG off, whitenoise's manifest, persistent
connections; HTTPS left to the proxy that a deployment puts in front: SECURE_SSL_REDIRECT=0)
and the workers `make serve` starts (2 per processor + 1), and two runs of the users, each
a thread with its own session, as a browser keeps one:
- Throughput: every user sends BENCH_LOAD_REQUESTS requests of one page without pause,
  the bare view (/health/, anonymous: no session, no template, one SELECT 1), the study
  chooser (/studies/, the smallest signed-in page, as a reference), the patient list
  (page 1 of the user's site), the user's casebook; the pages' requests per second as a
  share of the bare view's.
- Users at work: all log in at once (the password's hash is the cost, slow on purpose),
  then each, starting within one pause of the others, BENCH_LOAD_ROUNDS times opens the
  patient list, their casebook, the M1 mRSS form and saves it (one area corrected, with
  the reason the form asks), pausing BENCH_LOAD_PAUSE seconds between requests.
Printed: requests, errors, p50, p95, requests per second, share of the bare view; then the
targets: the patient list and the casebook at least 0.40 of the bare view's throughput,
p95 under 150 ms for the users at work, no error.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
RCT = "NCT00479934"
PASSWORD = "load-bench-password-2026"  # noqa: S105  # nosec B105  # throw-away database
USERS = int(os.environ.get("BENCH_LOAD_USERS", "20"))
PATIENTS = int(os.environ.get("BENCH_LOAD_PATIENTS", "1000"))
REQUESTS = int(os.environ.get("BENCH_LOAD_REQUESTS", "40"))
ROUNDS = int(os.environ.get("BENCH_LOAD_ROUNDS", "4"))
PAUSE = float(os.environ.get("BENCH_LOAD_PAUSE", "1"))
SHARE_OF_BARE = 0.40
P95_MS = 150


class _Forms(HTMLParser):
    """The fields of each <form method="post"> of a page, as a browser would send them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self._fields: dict[str, str] | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self._fields = {}
            self.forms.append(self._fields)
        fields, name = self._fields, a.get("name")
        if fields is None:
            return
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    fields[name] = a.get("value") or "on"
            elif kind not in ("submit", "button"):
                fields[name] = a.get("value") or ""
        elif tag == "select" and name:
            self._select = name
            fields.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            fields[self._select] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            fields[name] = ""

    def handle_data(self, data):
        if self._fields is not None and self._textarea:
            self._fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._fields = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._fields is not None:
            # A browser drops the line break that follows <textarea>.
            value = self._fields[self._textarea]
            self._fields[self._textarea] = value.removeprefix("\n")
            self._textarea = None


def form_fields(html: str, having: str) -> dict[str, str]:
    """The fields of the page's post form that holds the field `having`."""
    parser = _Forms()
    parser.feed(html)
    for fields in parser.forms:
        if having in fields:
            return fields
    raise ValueError(f"no form with a field {having!r} on the page")


@dataclass
class Timings:
    times: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float, error: str | None = None) -> None:
        with self.lock:
            self.times.setdefault(kind, []).append(seconds)
            if error:
                self.errors.setdefault(kind, []).append(error)


class User:
    """One person: a session of their own against the server."""

    def __init__(self, base: str, timings: Timings, username: str | None = None) -> None:
        self.base, self.timings, self.username = base, timings, username
        self.session = requests.Session()

    def request(self, kind: str, method: str, path: str, expect: int = 200, **kwargs):
        start = time.perf_counter()
        error, response = None, None
        try:
            response = self.session.request(
                method, self.base + path, allow_redirects=False, timeout=60, **kwargs
            )
            if response.status_code != expect:
                error = f"{method} {path}: {response.status_code}, not {expect}"
        except requests.RequestException as exc:
            error = f"{method} {path}: {exc}"
        self.timings.add(kind, time.perf_counter() - start, error)
        return response if error is None else None

    def login(self) -> bool:
        page = self.request("login page", "GET", "/accounts/login/")
        if page is None:
            return False
        fields = form_fields(page.text, "username")
        fields.update(username=self.username, password=PASSWORD)
        return self.request("login", "POST", "/accounts/login/", 302, data=fields) is not None

    def save_mrss(self, form_path: str, kind: str) -> None:
        page = self.request(f"{kind} form", "GET", form_path)
        if page is None:
            return
        fields = form_fields(page.text, "version")
        fields["face"] = "2" if fields.get("face") == "1" else "1"
        fields["reason"] = "Re-read on the examination sheet"
        self.request(f"{kind} save", "POST", form_path, 302, data=fields)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workers() -> int:
    """As `make serve`: two per processor, plus one."""
    return len(os.sched_getaffinity(0)) * 2 + 1


def _server_environment(database: dict) -> dict:
    url = (
        f"postgres://{database['USER']}:{database.get('PASSWORD') or ''}@"
        f"{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"
    )
    return {
        **os.environ,
        "DEBUG": "0",
        "DEMO": "0",
        "DATABASE_URL": url,
        "SECRET_KEY": "load-bench-" + "x" * 50,
        "SDV_SEED": "load-bench-sdv-seed",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "CELERY_BROKER_URL": "memory://localhost/",
        "CELERY_TASK_ALWAYS_EAGER": "1",
    }


class Server:
    """gunicorn serving the bench's database with the production settings."""

    def __init__(self, database: dict) -> None:
        self.env = _server_environment(database)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        python = Path(sys.executable)
        subprocess.run(
            [python, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
            cwd=ROOT, env=self.env, check=True,
        )  # fmt: skip
        gunicorn = shutil.which("gunicorn", path=str(python.parent)) or "gunicorn"
        self.process = subprocess.Popen(  # noqa: S603  # nosec B603  # our own command line
            [gunicorn, "ecrf.wsgi", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(workers()), "--error-logfile", "-", "--log-level", "warning"],
            cwd=ROOT, env=self.env,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.base + "/health/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not answer /health/ within 60 s")
        # Every worker's first request (imports, its database connection) is not measured.
        for _ in range(workers() * 4):
            requests.get(self.base + "/health/", timeout=10)
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)


def _load_users(study) -> list[tuple[str, str]]:
    """BENCH_LOAD_USERS investigators of Bordeaux, each with one of its generated
    patients (subject code); one password hash for all, computed once."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from ecrf.accounts.access import Role
    from ecrf.accounts.models import Membership
    from ecrf.patients.models import Patient
    from ecrf.studies.models import Site

    site = Site.objects.get(code="BXP")
    patients = list(
        Patient.objects.filter(study=study, site=site, subject_code__regex=r"^BXP-\d{5}$")
        .order_by("subject_code")
        .values_list("subject_code", flat=True)[:USERS]
    )
    if len(patients) < USERS:
        raise RuntimeError(f"{len(patients)} generated patients at Bordeaux, {USERS} wanted")
    # Their casebooks open again (the generated patients have completed the study), so
    # that their forms can be corrected.
    Patient.objects.filter(study=study, subject_code__in=patients).update(
        status=Patient.Status.ENROLLED, end_date=None, end_reason=""
    )
    hashed = make_password(PASSWORD)
    model = get_user_model()
    accounts = model.objects.bulk_create(
        [model(username=f"load.{n:02d}", password=hashed) for n in range(1, USERS + 1)]
    )
    Membership.objects.bulk_create(
        [Membership(user=u, study=study, site=site, role=Role.INVESTIGATOR) for u in accounts]
    )
    return [(u.username, code) for u, code in zip(accounts, patients, strict=True)]


def _run(users: list[User], work) -> float:
    threads = [threading.Thread(target=work, args=(user,)) for user in users]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


@dataclass
class Row:
    label: str
    times: list[float]
    errors: int
    per_second: float | None = None
    target: bool = True  # False: a reference, measured beside the pages, aimed at nothing

    def p(self, q: int) -> float:
        if len(self.times) < 2:
            return self.times[0] * 1000
        return statistics.quantiles(self.times, n=100, method="inclusive")[q - 1] * 1000


def throughput(
    server: Server, accounts, label: str, path_of, signed_in: bool, target: bool = True
) -> Row:
    timings = Timings()
    users = [User(server.base, timings, name) for name, _code in accounts]
    if signed_in:
        _run(users, User.login)
    paths = {user: path_of(code) for user, (_name, code) in zip(users, accounts, strict=True)}
    timings.times.clear()
    timings.errors.clear()

    def work(user):
        for _ in range(REQUESTS):
            user.request(label, "GET", paths[user])

    seconds = _run(users, work)
    times = timings.times[label]
    return Row(label, times, len(timings.errors.get(label, [])), len(times) / seconds, target)


def at_work(server: Server, accounts) -> tuple[list[Row], list[str]]:
    timings = Timings()
    users = [User(server.base, timings, name) for name, _code in accounts]
    codes = {user: code for user, (_name, code) in zip(users, accounts, strict=True)}
    patients = f"/studies/{RCT}/patients/"

    starts = {user: n * PAUSE / len(users) for n, user in enumerate(users)}
    # All log in at once (the password's hash, slow on purpose, is most of it), then work.
    _run(users, User.login)

    def work(user):
        code = codes[user]
        time.sleep(starts[user])  # not all in the same instant, as people do
        for _ in range(ROUNDS):
            time.sleep(PAUSE)
            user.request("patient list", "GET", patients)
            time.sleep(PAUSE)
            user.request("casebook", "GET", f"{patients}{code}/")
            time.sleep(PAUSE)
            user.save_mrss(f"{patients}{code}/visits/M1/1/forms/mrss/", "mRSS")

    _run(users, work)
    order = ["login page", "login", "patient list", "casebook", "mRSS form", "mRSS save"]
    rows = [
        Row(kind, timings.times[kind], len(timings.errors.get(kind, [])))
        for kind in order
        if kind in timings.times
    ]
    errors = [e for kind in order for e in timings.errors.get(kind, [])]
    return rows, errors


def report(table: list[Row], work: list[Row], errors: list[str]) -> None:
    bare = table[0].per_second
    print()
    print(f"load: gunicorn, {workers()} workers, {USERS} users, production settings")
    print(f"{'request':<40} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'req/s':>7} {'× bare':>6}")  # fmt: skip
    print(f"without pause, {REQUESTS} requests each:")
    for row in table:
        print(f"  {row.label:<38} {len(row.times):>8} {row.errors:>6} {row.p(50):7.1f} "
              f"{row.p(95):7.1f} {row.per_second:7.1f} {row.per_second / bare:6.2f}")  # fmt: skip
    print(f"at work, pausing {PAUSE:g} s between requests, {ROUNDS} rounds each:")
    for row in work:
        print(f"  {row.label:<38} {len(row.times):>8} {row.errors:>6} {row.p(50):7.1f} "
              f"{row.p(95):7.1f}")  # fmt: skip
    print("targets:")
    for row in table[1:]:
        if not row.target:
            continue
        share = row.per_second / bare
        mark = "pass" if share >= SHARE_OF_BARE else "MISS"
        print(f"  {row.label} at least {SHARE_OF_BARE:.2f} of the bare view: {share:.2f}  {mark}")
    for row in work:
        if row.label.startswith("login"):
            continue  # the password's hash: slow on purpose
        mark = "pass" if row.p(95) < P95_MS else "MISS"
        print(f"  {row.label} at work, p95 under {P95_MS} ms: {row.p(95):.0f} ms  {mark}")
    failed = sum(row.errors for row in table + work)
    print(f"  no error: {failed} error(s)  {'pass' if failed == 0 else 'MISS'}")
    for error in errors[:5]:
        print(f"    {error}")


def main() -> None:
    """The section: run by bench.py inside its throw-away database."""
    from django.core.management import call_command
    from django.db import connection

    from ecrf.celery import app
    from ecrf.studies.models import Study
    from scripts.bench_exports import patients_generate

    app.conf.task_always_eager = True
    call_command("seed_demo", verbosity=0)
    study = Study.objects.get(code=RCT)
    patients_generate(study, PATIENTS)
    accounts = _load_users(study)
    database = dict(connection.settings_dict)
    connection.close()
    patients = f"/studies/{RCT}/patients/"
    with Server(database) as server:
        table = [
            throughput(server, accounts, "bare view (/health/)", lambda code: "/health/", False),
            # The least a signed-in page costs (session, account, memberships, the base
            # template): what no page showing study data can go below.
            throughput(
                server,
                accounts,
                "study chooser (/studies/)",
                lambda code: "/studies/",
                True,
                target=False,
            ),
            throughput(server, accounts, "patient list, page 1", lambda code: patients, True),
            throughput(server, accounts, "casebook", lambda code: f"{patients}{code}/", True),
        ]
        work, errors = at_work(server, accounts)
    report(table, work, errors)
