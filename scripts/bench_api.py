"""The API section of `make bench`: a nightly pull of every mRSS form of a big study.

On the bench's throw-away database: the demo, then BENCH_API_PATIENTS (10,000) patients of
NCT00479934 with every form of their six visits filled (bench_exports.patients_generate).
The demo's data manager (all sites), with the confirmed authenticator their role needs
for a token, creates one; then every mRSS form of the study is pulled through the API,
/api/v1/studies/NCT00479934/forms/mrss/?page_size=1000, page by page following "next",
with Django's test client in-process and DEBUG off, as in production.

Printed: patients, forms pulled, pages, total seconds, forms per second, the median and
the slowest page, and the queries of the first and of the last page (cursor pages: the
same, whatever the page's place).
"""

from __future__ import annotations

import os
import statistics
import time

RCT = "NCT00479934"
PATIENTS = int(os.environ.get("BENCH_API_PATIENTS", "10000"))
PAGE_SIZE = 1000
DATA_MANAGER = "datamanager"


def _page(client, url: str, headers: dict) -> tuple[dict, float]:
    start = time.perf_counter()
    response = client.get(url, headers=headers)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:  # an error is no figure for the page
        raise SystemExit(f"{url}: HTTP {response.status_code} {response.content[:300]!r}")
    return response.json(), elapsed


def _queries(client, url: str, headers: dict) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        _page(client, url, headers)
    return len(captured.captured_queries)


def main() -> None:
    """The section: run by bench.py inside its throw-away database."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from ecrf.api.tokens import token_create
    from ecrf.celery import app
    from ecrf.crfs.models import Mrss
    from ecrf.studies.models import Study
    from scripts.bench_exports import patients_generate

    app.conf.task_always_eager = True
    call_command("seed_demo", verbosity=0)
    study = Study.objects.get(code=RCT)
    patients_generate(study, PATIENTS)
    user = get_user_model().objects.get(username=DATA_MANAGER)
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        TOTPDevice.objects.create(user=user, name="bench phone", confirmed=True)
    _token, key = token_create(user=user, name="bench nightly pull", days=1)
    headers = {"Authorization": f"Bearer {key}"}
    expected = Mrss.objects.filter(patient__study=study).count()

    client = Client()
    first = f"/api/v1/studies/{RCT}/forms/mrss/?page_size={PAGE_SIZE}"
    with override_settings(DEBUG=False):
        _page(client, first, headers)  # warm-up: the token's last use is written once
        urls, samples, pulled, ids = [], [], 0, set()
        start = time.perf_counter()
        url = first
        while url:
            urls.append(url)
            body, elapsed = _page(client, url, headers)
            samples.append(elapsed * 1000)
            pulled += len(body["results"])
            ids.update(form["id"] for form in body["results"])
            url = body["next"]
        total = time.perf_counter() - start
        queries_first = _queries(client, urls[0], headers)
        queries_last = _queries(client, urls[-1], headers)

    if pulled != expected or len(ids) != expected:
        raise SystemExit(f"pulled {pulled} forms ({len(ids)} distinct), the study has {expected}")
    patients = study.patients.count()
    print(f"{'api: patients in ' + RCT:<58} {patients:7d}")
    print(f"{'api: mRSS forms pulled (data manager, all sites)':<58} {pulled:7d}   "
          f"pages {len(samples)} of {PAGE_SIZE}")  # fmt: skip
    print(f"{'api: the whole pull, following next':<58} {total:7.2f} s   "
          f"{pulled / total:7.0f} forms/s")  # fmt: skip
    print(f"{'api: a page of ' + str(PAGE_SIZE) + ' forms':<58} median "
          f"{statistics.median(samples):7.1f} ms   max {max(samples):7.1f} ms")  # fmt: skip
    print(f"{'api: queries of the first page, of the last page':<58} "
          f"{queries_first:7d}   {queries_last:d}")  # fmt: skip
    if queries_first != queries_last:
        raise SystemExit("the pages' queries grow with the page's place")
