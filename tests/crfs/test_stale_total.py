"""A stored total cannot go stale: the database refuses an mRSS whose total is not the sum
of its areas, however the row is written (the issue: the total stayed 24 after an area
changed by a raw update)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from ecrf.crfs.models import Dlqi, Mrss
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


# -- the DLQI: the score of coded answers, one missing item imputed --------------------------

DLQI_ANSWERS = {
    "q1": "very_much",
    "q2": "a_lot",
    "q3": "a_little",
    "q4": "not_at_all",
    "q5": "NR",
    "q6": "a_lot",
    "q7a": "no",
    "q7b": "a_little",
    "q8": "very_much",
    "q9": "NR",
    "q10": "a_little",
}


@pytest.mark.parametrize(
    ("changes", "total", "imputed"),
    [
        ({}, 13, 0),
        ({"q7a": "yes", "q7b": ""}, 15, 0),
        ({"q7a": "NR", "q7b": ""}, 12, 0),
        ({"q7b": ""}, 12, 1),  # q7a "no" without q7b: q7 missing, imputed
        ({"q1": ""}, 10, 1),
        ({"q1": "", "q2": ""}, None, 0),  # two missing: not calculable
        ({"q1": "", "q7a": "", "q7b": ""}, None, 0),
    ],
)
def test_the_databases_dlqi_score_agrees_with_the_scoring_module(visit, changes, total, imputed):
    """Each row saved through the model (scored by ecrf.scoring.dlqi) passes the check."""
    form = crf_factory(Dlqi)(visit=visit, **{**DLQI_ANSWERS, **changes})
    assert Dlqi.objects.values_list("total", "imputed_items").get(pk=form.pk) == (total, imputed)


def test_a_raw_sql_update_of_a_dlqi_answer_alone_is_refused(visit):
    form = crf_factory(Dlqi)(visit=visit, **DLQI_ANSWERS)
    with pytest.raises(IntegrityError) as refused:
        _raw("UPDATE crfs_dlqi SET q1 = 'not_at_all' WHERE id = %s", form.pk)
    assert "dlqi_total_is_the_score_of_the_answers" in str(refused.value)
    with pytest.raises(IntegrityError):
        _raw("UPDATE crfs_dlqi SET q1 = '', total = 10 WHERE id = %s", form.pk)  # imputed 0
    _raw("UPDATE crfs_dlqi SET q1 = '', total = 10, imputed_items = 1 WHERE id = %s", form.pk)
    assert Dlqi.objects.values_list("total", "imputed_items").get(pk=form.pk) == (10, 1)
