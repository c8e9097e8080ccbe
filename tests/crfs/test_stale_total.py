"""A stored total cannot go stale: the database refuses an mRSS whose total is not the sum
of its areas, however the row is written (the issue: the total stayed 24 after an area
changed by a raw update)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from ecrf.crfs.models import Mrss
from ecrf.scoring import mrss
from tests.factories import crf_factory

pytestmark = pytest.mark.django_db

# 17 areas: 7 at 2 and 10 at 1 make 24.
AREAS_24 = {area: 2 if i < 7 else 1 for i, area in enumerate(mrss.AREAS)}


@pytest.fixture
def scored(visit) -> Mrss:
    form = crf_factory(Mrss)(visit=visit, **AREAS_24)
    assert Mrss.objects.get(pk=form.pk).total == 24
    return form


def _raw(sql: str, *params) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_raw_sql_update_of_an_area_alone_is_refused(scored):
    with pytest.raises(IntegrityError) as refused:
        _raw("UPDATE crfs_mrss SET face = 3 WHERE id = %s", scored.pk)
    assert "mrss_total_is_sum_of_areas" in str(refused.value)
    assert Mrss.objects.values_list("face", "total").get(pk=scored.pk) == (2, 24)


def test_a_bulk_update_of_an_area_alone_is_refused(scored):
    with pytest.raises(IntegrityError), transaction.atomic():
        Mrss.objects.filter(pk=scored.pk).update(face=0)
    assert Mrss.objects.get(pk=scored.pk).total == 24


def test_a_blank_area_needs_a_blank_total_and_a_total_needs_every_area(scored):
    with pytest.raises(IntegrityError):
        _raw("UPDATE crfs_mrss SET face = NULL WHERE id = %s", scored.pk)
    with pytest.raises(IntegrityError):
        _raw("UPDATE crfs_mrss SET face = NULL, total = 22 WHERE id = %s", scored.pk)
    _raw("UPDATE crfs_mrss SET face = NULL, total = NULL WHERE id = %s", scored.pk)
    with pytest.raises(IntegrityError):
        _raw("UPDATE crfs_mrss SET total = 22 WHERE id = %s", scored.pk)
    assert Mrss.objects.get(pk=scored.pk).total is None


def test_an_update_that_recomputes_the_total_is_accepted(scored):
    _raw("UPDATE crfs_mrss SET face = 3, total = total + 1 WHERE id = %s", scored.pk)
    assert Mrss.objects.values_list("face", "total").get(pk=scored.pk) == (3, 25)
    form = Mrss.objects.get(pk=scored.pk)
    form.face = 0
    form.save()  # the model's save scores it again, as crf_save does
    assert Mrss.objects.get(pk=scored.pk).total == 22
