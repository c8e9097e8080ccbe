"""What the review app does when another app's data change (connected in ReviewConfig.ready)."""

from __future__ import annotations

from ecrf.review import queries, signatures
from ecrf.review.sdv import sdv_entry_changed


def form_entry_changed(sender, *, entry, previous_review_version, **kwargs) -> None:
    """A reviewed form got a new version: its verification is reset on what changed, in
    the save's transaction and audit context."""
    sdv_entry_changed(entry, previous_review_version=previous_review_version)


def form_entry_saved(sender, *, entry, **kwargs) -> None:
    """A form instance got a new version: the signatures it changes are voided, and a
    query its reason for change names is answered, in the save's transaction and audit
    context."""
    signatures.form_entry_saved(entry)
    queries.query_answered_by_save(entry)


def visit_changed(sender, *, visit, field, **kwargs) -> None:
    """A visit's date changed, or it was declared missed: the same for the signatures."""
    signatures.visit_changed(visit, field)
