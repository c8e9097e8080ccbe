"""What a change to the form index tells the apps above patients, which it never imports.

`form_entry_changed` is sent by `form_index_sync` when a save gives a reviewed instance (one
whose source data verification applies to an earlier version) a new version. The entry's
review is already reset when it is sent, in the save's transaction and audit context: a
receiver (the review app) records the reset, carries forward what the change left
verified, and may void what depended on the old version. Connect with FormIndexEntry as
sender, never for all.
"""

from django.dispatch import Signal

# Arguments: entry (the FormIndexEntry as now saved, its review reset), previous_version
# (the instance's version before the save), previous_state and previous_review_version
# (the entry's review columns before the reset).
form_entry_changed = Signal()
