"""Site scoping: every list and detail view shows a user their own sites and nothing else."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ecrf.accounts.access import studies_visible_to
from ecrf.patients.models import Patient

pytestmark = pytest.mark.django_db


def codes(patients):
    return sorted(p.subject_code for p in patients)


def listed_codes(response):
    return sorted(p.subject_code for p in response.context["page"])


def test_visible_to_follows_memberships(world):
    visible = {
        name: codes(Patient.objects.visible_to(getattr(world, name)))
        for name in ("alice", "bob", "charlie", "monica", "diane", "rene")
    }
    bxp, str_, ren = codes(world.bxp_patients), codes(world.str_patients), codes(world.ren_patients)
    assert visible["alice"] == bxp
    assert visible["bob"] == bxp
    assert visible["monica"] == bxp
    assert visible["charlie"] == str_
    assert visible["rene"] == ren
    assert visible["diane"] == sorted(bxp + str_ + ren)


def test_anonymous_and_inactive_users_see_nothing(world):
    from django.contrib.auth.models import AnonymousUser

    assert not Patient.objects.visible_to(AnonymousUser()).exists()
    world.alice.is_active = False
    world.alice.save()
    assert not Patient.objects.visible_to(world.alice).exists()


def test_inactive_membership_gives_no_access(world):
    world.alice.memberships.update(active=False)
    assert not Patient.objects.visible_to(world.alice).exists()
    assert not studies_visible_to(world.alice).exists()


def test_patient_list_shows_only_own_site(client, world):
    client.force_login(world.charlie)
    response = client.get(reverse("patients:list", args=[world.rct.code]))
    assert response.status_code == 200
    assert listed_codes(response) == codes(world.str_patients)
    body = response.content.decode()
    assert "BXP-" not in body
    assert "Pellegrin" not in body
    assert response.context["page"].paginator.count == 2


def test_search_and_filters_do_not_reach_another_site(client, world):
    client.force_login(world.charlie)
    url = reverse("patients:list", args=[world.rct.code])
    assert listed_codes(client.get(url, {"q": "BXP-001"})) == []
    response = client.get(url, {"site": "BXP"})
    # Another site's code is not a valid choice: the filter is refused, nothing is listed from it.
    assert "BXP" not in "".join(listed_codes(response))
    assert response.context["filter"].errors


def test_patient_detail_of_another_site_is_404(client, world):
    client.force_login(world.charlie)
    other = world.bxp_patients[0]
    for name in ("patients:detail", "patients:audit"):
        response = client.get(reverse(name, args=[world.rct.code, other.subject_code]))
        assert response.status_code == 404
        assert other.subject_code not in response.content.decode()


def test_another_study_is_404_for_every_view(client, world):
    client.force_login(world.rene)
    rct_patient = world.bxp_patients[0]
    urls = [
        reverse("patients:list", args=[world.rct.code]),
        reverse("patients:create", args=[world.rct.code]),
        reverse("patients:detail", args=[world.rct.code, rct_patient.subject_code]),
        reverse("patients:audit", args=[world.rct.code, rct_patient.subject_code]),
        reverse("patients:list", args=["NCT99999999"]),
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url


def test_study_chooser_counts_only_visible_patients(client, world):
    client.force_login(world.charlie)
    response = client.get(reverse("studies:chooser"))
    rows = response.context["rows"]
    assert [(study.code, count) for study, _, count in rows] == [("NCT00479934", 2)]
    assert "NCT04206644" not in response.content.decode()

    client.force_login(world.diane)
    rows = client.get(reverse("studies:chooser")).context["rows"]
    assert [(study.code, count) for study, _, count in rows] == [
        ("NCT00479934", 5),
        ("NCT04206644", 2),
    ]


def test_monitor_sees_only_assigned_site(client, world):
    client.force_login(world.monica)
    response = client.get(reverse("patients:list", args=[world.rct.code]))
    assert listed_codes(response) == codes(world.bxp_patients)
    other = world.str_patients[0]
    url = reverse("patients:detail", args=[world.rct.code, other.subject_code])
    assert client.get(url).status_code == 404


def test_data_manager_filters_by_site(client, world):
    client.force_login(world.diane)
    url = reverse("patients:list", args=[world.rct.code])
    assert listed_codes(client.get(url)) == codes(world.bxp_patients + world.str_patients)
    assert listed_codes(client.get(url, {"site": "STR"})) == codes(world.str_patients)


def test_login_required_everywhere(client, world):
    patient = world.bxp_patients[0]
    for url in (
        reverse("studies:chooser"),
        reverse("patients:list", args=[world.rct.code]),
        reverse("patients:detail", args=[world.rct.code, patient.subject_code]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("rows", [1, 30])
def test_patient_list_query_count_is_constant(client, world, django_assert_num_queries, rows):
    from tests.factories import PatientFactory

    for _ in range(rows - 1):
        PatientFactory(study=world.rct, site=world.bxp, created_by=world.alice)
    client.force_login(world.alice)
    url = reverse("patients:list", args=[world.rct.code])
    # session, user, the account's memberships (the second factor and every link's role:
    # one query), study, count, "can screen" check, site choices, the page of patients
    # (next visit in subqueries), protocol for the allocation-list link, the study's sites
    # for the "People and access" link, the page's queries not closed per patient (the
    # review's tag); the session's expiry is pushed at most once a minute, and not on the
    # first page after the login, which saved it.
    with django_assert_num_queries(11):
        response = client.get(url)
    assert response.status_code == 200
