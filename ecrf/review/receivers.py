"""What the review app does when another app's data change (connected in ReviewConfig.ready)."""

from __future__ import annotations

from ecrf.review.sdv import sdv_entry_changed


def form_entry_changed(sender, *, entry, previous_review_version, **kwargs) -> None:
    """A reviewed form got a new version: its verification is reset on what changed, in
    the save's transaction and audit context."""
    sdv_entry_changed(entry, previous_review_version=previous_review_version)
