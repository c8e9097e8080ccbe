"""Allocation lists: generated from a recorded seed or imported, by unblinded users only."""

from __future__ import annotations

import re

import pghistory
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from ecrf.accounts.access import Role
from ecrf.accounts.models import Membership
from ecrf.patients.models import Allocation, AllocationList
from ecrf.patients.randomisation import (
    allocation_list_generate,
    allocation_list_import,
    generate_blocks,
)
from ecrf.studies.models import Site
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

COLUMNS = ("sequence", "block_number", "block_size", "arm", "kit_number")


def rows(*lines):
    return [dict(zip(COLUMNS, line, strict=True)) for line in lines]


GOOD = (
    ("1", "1", "2", "PBO", "KIT-A1"),
    ("2", "1", "2", "IMA", "KIT-A2"),
    ("3", "2", "4", "IMA", "KIT-A3"),
    ("4", "2", "4", "IMA", "KIT-A4"),
    ("5", "2", "4", "PBO", "KIT-A5"),
    ("6", "2", "4", "PBO", "KIT-A6"),
)


def stored(study, site):
    return list(
        Allocation.objects.filter(study=study, site=site)
        .order_by("sequence")
        .values_list("sequence", "block_number", "block_size", "arm")
    )


class TestGenerate:
    def test_list_follows_the_recorded_seed_and_the_protocol(self, world, ursula):
        allocation_list = allocation_list_generate(
            study=world.rct, site=world.bxp, size=40, seed=2026, by=ursula
        )
        assert allocation_list.seed == 2026
        assert allocation_list.source == AllocationList.Source.GENERATED
        assert allocation_list.block_sizes == [2, 4]
        assert allocation_list.created_by == ursula
        expected = generate_blocks(
            arms=("IMA", "PBO"), ratio={"IMA": 1, "PBO": 1}, block_sizes=(2, 4), n=40, seed=2026
        )
        assert stored(world.rct, world.bxp) == [
            (i, block, size, arm) for i, (block, size, arm) in enumerate(expected, start=1)
        ]
        assert not Allocation.objects.filter(patient__isnull=False).exists()

    def test_seed_is_drawn_and_recorded_when_not_given(self, world, ursula):
        first = allocation_list_generate(study=world.rct, site=world.bxp, size=10, by=ursula)
        second = allocation_list_generate(study=world.rct, site=world.str_, size=10, by=ursula)
        assert first.seed is not None and second.seed is not None
        assert first.seed != second.seed
        expected = generate_blocks(
            arms=("IMA", "PBO"),
            ratio={"IMA": 1, "PBO": 1},
            block_sizes=(2, 4),
            n=10,
            seed=first.seed,
        )
        assert [row[3] for row in stored(world.rct, world.bxp)] == [arm for *_, arm in expected]

    def test_kit_numbers_are_unique_in_the_study_and_reveal_nothing(self, world, ursula):
        for site in (world.bxp, world.str_):
            allocation_list_generate(study=world.rct, site=site, size=200, seed=1, by=ursula)
        kits = list(Allocation.objects.filter(study=world.rct).values_list("kit_number", flat=True))
        assert len(kits) == len(set(kits)) >= 400
        assert all(re.fullmatch(r"K-\d{6}", kit) for kit in kits)
        # Same seed at both sites: same arms, yet different kit numbers (not derived from it).
        bxp, str_ = (
            list(Allocation.objects.filter(site=s).order_by("sequence").values_list("kit_number"))
            for s in (world.bxp, world.str_)
        )
        assert stored(world.rct, world.bxp)[:50] == stored(world.rct, world.str_)[:50]
        assert bxp != str_
        ordered = [int(k[0][2:]) for k in bxp]
        assert ordered != sorted(ordered)

    def test_second_list_continues_the_site_sequence_and_blocks(self, world, ursula):
        first = allocation_list_generate(study=world.rct, site=world.bxp, size=6, seed=1, by=ursula)
        last_block = first.slots.order_by("-sequence").first().block_number
        n_first = first.slots.count()
        second = allocation_list_generate(
            study=world.rct, site=world.bxp, size=6, seed=2, by=ursula
        )
        sequences = list(second.slots.order_by("sequence").values_list("sequence", flat=True))
        assert sequences == list(range(n_first + 1, n_first + 1 + len(sequences)))
        assert second.slots.order_by("sequence").first().block_number == last_block + 1

    def test_generation_is_audited_with_its_reason(self, world, ursula):
        allocation_list = allocation_list_generate(
            study=world.rct, site=world.bxp, size=4, seed=9, by=ursula
        )
        (event,) = pghistory.models.Events.objects.tracks(allocation_list)
        assert event.pgh_context["reason"] == "allocation list generated"
        assert event.pgh_context["user"] == ursula.pk
        slot = allocation_list.slots.first()
        assert pghistory.models.Events.objects.tracks(slot).get().pgh_context["user"] == ursula.pk

    @pytest.mark.parametrize("persona", ["diane", "alice", "monica", "charlie"])
    def test_blinded_and_site_users_may_not_generate(self, world, persona):
        with pytest.raises(PermissionDenied):
            allocation_list_generate(
                study=world.rct, site=world.bxp, size=10, by=getattr(world, persona)
            )
        assert not AllocationList.objects.exists()

    def test_unblinded_investigator_may_not_generate_either(self, world):
        Membership.objects.filter(user=world.alice).update(unblinded=True)
        with pytest.raises(PermissionDenied):
            allocation_list_generate(study=world.rct, site=world.bxp, size=10, by=world.alice)

    def test_unblinded_administrator_may(self, world):
        admin = UserFactory(username="adele")
        MembershipFactory(user=admin, study=world.rct, site=None, role=Role.ADMIN, unblinded=True)
        allocation_list_generate(study=world.rct, site=world.bxp, size=2, by=admin)
        assert Allocation.objects.count() >= 2

    def test_study_without_randomisation_is_refused(self, world):
        manager = UserFactory(username="cohort-dm")
        MembershipFactory(
            user=manager, study=world.cohort, site=None, role=Role.DATA_MANAGER, unblinded=True
        )
        with pytest.raises(ValidationError, match="not randomised"):
            allocation_list_generate(study=world.cohort, site=world.ren, size=4, by=manager)

    def test_site_outside_the_study_and_bad_sizes_are_refused(self, world, ursula):
        with pytest.raises(ValidationError) as excinfo:
            allocation_list_generate(study=world.rct, site=world.ren, size=4, by=ursula)
        assert "site" in excinfo.value.message_dict
        for size in (0, 100_000):
            with pytest.raises(ValidationError) as excinfo:
                allocation_list_generate(study=world.rct, site=world.bxp, size=size, by=ursula)
            assert "size" in excinfo.value.message_dict
        assert not AllocationList.objects.exists()

    def test_over_1000_patients_per_site_arms_stay_within_half_the_largest_block(
        self, world, ursula
    ):
        """Every site of the trial gets a 1,000-slot list; patients take slots in sequence,
        so the running difference of the stored arms is what 1,000 patients would see."""
        sites = list(Site.objects.filter(study_sites__study=world.rct))
        assert len(sites) == 12
        for site in sites:
            allocation_list_generate(study=world.rct, site=site, size=1000, by=ursula)
        for site in sites:
            slots = stored(world.rct, site)
            assert len(slots) >= 1000
            assert [s[0] for s in slots] == list(range(1, len(slots) + 1))
            difference = 0
            for index, (_sequence, block, size, arm) in enumerate(slots):
                assert size in (2, 4)
                difference += 1 if arm == "IMA" else -1
                assert abs(difference) <= 2
                if index + 1 == len(slots) or slots[index + 1][1] != block:
                    assert difference == 0


class TestImport:
    def test_valid_file_is_imported_as_given(self, world, ursula):
        allocation_list = allocation_list_import(
            study=world.rct, site=world.bxp, rows=rows(*GOOD), by=ursula, note="from the CRO"
        )
        assert allocation_list.source == AllocationList.Source.IMPORTED
        assert allocation_list.seed is None
        assert allocation_list.block_sizes == [2, 4]
        assert stored(world.rct, world.bxp) == [
            (int(s), int(b), int(z), arm) for s, b, z, arm, _ in GOOD
        ]
        assert set(allocation_list.slots.values_list("kit_number", flat=True)) == {
            line[4] for line in GOOD
        }
        (event,) = pghistory.models.Events.objects.tracks(allocation_list)
        assert event.pgh_context["reason"] == "allocation list imported"

    @pytest.mark.parametrize(
        ("change", "row", "column", "words"),
        [
            ((2, 3, "XYZ"), 4, "arm", "unknown arm 'XYZ'"),
            ((1, 4, "KIT-A1"), 3, "kit_number", "already on row 2"),
            ((0, 4, ""), 2, "kit_number", "empty"),
            ((3, 0, "7"), 5, "sequence", "expected 4"),
            ((4, 2, "four"), 6, "block_size", "not a whole number"),
            ((2, 2, "3"), 4, "block_size", "different sizes"),
            ((5, 3, "IMA"), 4, "arm", "not balanced"),
            ((0, 1, "0"), 2, "block_number", "1 or more"),
        ],
    )
    def test_errors_name_row_and_column_and_nothing_is_saved(
        self, world, ursula, change, row, column, words
    ):
        index, position, value = change
        lines = [list(line) for line in GOOD]
        lines[index][position] = value
        with pytest.raises(ValidationError) as excinfo:
            allocation_list_import(study=world.rct, site=world.bxp, rows=rows(*lines), by=ursula)
        messages = excinfo.value.messages
        assert any(m.startswith(f"Row {row}, column {column}:") and words in m for m in messages), (
            messages
        )
        assert not AllocationList.objects.exists()
        assert not Allocation.objects.exists()

    def test_every_problem_is_reported_at_once(self, world, ursula):
        lines = [list(line) for line in GOOD]
        lines[0][3] = "ABC"
        lines[5][4] = "KIT-A5"
        with pytest.raises(ValidationError) as excinfo:
            allocation_list_import(study=world.rct, site=world.bxp, rows=rows(*lines), by=ursula)
        messages = excinfo.value.messages
        assert any(m.startswith("Row 2, column arm:") for m in messages)
        assert any(m.startswith("Row 7, column kit_number:") for m in messages)

    def test_kit_number_already_used_in_the_study_is_refused(self, world, ursula):
        allocation_list_import(study=world.rct, site=world.str_, rows=rows(*GOOD[:2]), by=ursula)
        with pytest.raises(ValidationError) as excinfo:
            allocation_list_import(study=world.rct, site=world.bxp, rows=rows(*GOOD), by=ursula)
        assert any(
            m.startswith("Row 2, column kit_number:") and "already used" in m
            for m in excinfo.value.messages
        )
        assert AllocationList.objects.count() == 1

    def test_import_after_a_list_must_continue_its_sequence(self, world, ursula):
        allocation_list_import(study=world.rct, site=world.bxp, rows=rows(*GOOD[:2]), by=ursula)
        later = [("3", "2", "2", "IMA", "KIT-B1"), ("4", "2", "2", "PBO", "KIT-B2")]
        allocation_list_import(study=world.rct, site=world.bxp, rows=rows(*later), by=ursula)
        again = [("1", "9", "2", "IMA", "KIT-C1"), ("2", "9", "2", "PBO", "KIT-C2")]
        with pytest.raises(ValidationError, match="Row 2, column sequence: expected 5"):
            allocation_list_import(study=world.rct, site=world.bxp, rows=rows(*again), by=ursula)
        assert len(stored(world.rct, world.bxp)) == 4

    def test_missing_column_and_empty_file(self, world, ursula):
        bad = [{k: v for k, v in row.items() if k != "arm"} for row in rows(*GOOD)]
        with pytest.raises(ValidationError, match="Missing column"):
            allocation_list_import(study=world.rct, site=world.bxp, rows=bad, by=ursula)
        with pytest.raises(ValidationError, match="no rows"):
            allocation_list_import(study=world.rct, site=world.bxp, rows=[], by=ursula)

    def test_blinded_data_manager_may_not_import(self, world):
        with pytest.raises(PermissionDenied):
            allocation_list_import(
                study=world.rct, site=world.bxp, rows=rows(*GOOD), by=world.diane
            )
        assert not Allocation.objects.exists()


class TestCommands:
    def test_generate_command_records_the_given_seed(self, world, ursula, capsys):
        call_command(
            "generate_allocation_list",
            study="NCT00479934",
            site="BXP",
            size=12,
            seed=77,
            by="ursula",
        )
        allocation_list = AllocationList.objects.get()
        assert allocation_list.seed == 77
        out = capsys.readouterr().out
        assert "seed recorded" in out
        assert "IMA" not in out and "PBO" not in out

    def test_generate_command_refuses_a_blinded_user(self, world):
        with pytest.raises(CommandError, match="unblinded data manager"):
            call_command(
                "generate_allocation_list", study="NCT00479934", site="BXP", size=4, by="diane"
            )

    def test_import_command_reads_a_csv_file(self, world, ursula, tmp_path):
        path = tmp_path / "bxp.csv"
        path.write_text(
            "\ufeff" + ",".join(COLUMNS) + "\n" + "\n".join(",".join(line) for line in GOOD) + "\n",
            encoding="utf-8",
        )
        call_command(
            "import_allocation_list", str(path), study="NCT00479934", site="BXP", by="ursula"
        )
        assert len(stored(world.rct, world.bxp)) == 6

    def test_import_command_reports_rows_and_columns(self, world, ursula, tmp_path):
        path = tmp_path / "bad.csv"
        lines = [list(line) for line in GOOD]
        lines[1][3] = "Imatinib"
        path.write_text(
            ",".join(COLUMNS) + "\n" + "\n".join(",".join(line) for line in lines) + "\n"
        )
        with pytest.raises(CommandError, match="Row 3, column arm: unknown arm 'Imatinib'"):
            call_command(
                "import_allocation_list", str(path), study="NCT00479934", site="BXP", by="ursula"
            )
        assert not Allocation.objects.exists()


class TestListsPage:
    def url(self, world):
        return reverse("patients:allocation_lists", args=[world.rct.code])

    def test_unblinded_data_manager_generates_from_the_page(self, client, world, ursula):
        client.force_login(ursula)
        response = client.post(self.url(world), {"site": "STR", "size": "8", "seed": "31"})
        assert response.status_code == 302
        allocation_list = AllocationList.objects.get()
        assert (allocation_list.site, allocation_list.seed) == (world.str_, 31)
        assert allocation_list.slots.count() >= 8

    def test_blinded_data_manager_sees_counts_but_may_not_post(self, client, world, lists):
        client.force_login(world.diane)
        response = client.get(self.url(world))
        assert response.status_code == 200
        assert response.context["form"] is None
        row = next(r for r in response.context["rows"] if r["site"] == world.bxp)
        assert (row["used"], row["free"]) == (0, lists["BXP"].slots.count())
        assert row["per_arm"] == []
        response = client.post(self.url(world), {"site": "BXP", "size": "8"})
        assert response.status_code == 403
        assert AllocationList.objects.count() == 2

    def test_investigator_sees_only_their_site(self, client, world, lists):
        client.force_login(world.alice)
        response = client.get(self.url(world))
        assert [r["site"] for r in response.context["rows"]] == [world.bxp]
        body = response.content.decode()
        assert str(lists["BXP"].seed) not in body

    def test_bad_post_shows_field_errors(self, client, world, ursula):
        client.force_login(ursula)
        response = client.post(self.url(world), {"site": "REN", "size": "0"})
        assert response.status_code == 200
        assert set(response.context["form"].errors) == {"site", "size"}
        assert not AllocationList.objects.exists()

    def test_other_study_and_unrandomised_study_are_404(self, client, world):
        client.force_login(world.rene)
        assert client.get(self.url(world)).status_code == 404
        url = reverse("patients:allocation_lists", args=[world.cohort.code])
        assert client.get(url).status_code == 404

    def test_list_detail_is_for_unblinded_users(self, client, world, ursula, lists):
        url = reverse("patients:allocation_list_detail", args=[world.rct.code, lists["BXP"].pk])
        client.force_login(world.diane)
        assert client.get(url).status_code == 403
        client.force_login(world.charlie)  # another site's list
        assert client.get(url).status_code == 404
        client.force_login(ursula)
        response = client.get(url)
        assert response.status_code == 200
        assert len(response.context["slots"]) == lists["BXP"].slots.count()
