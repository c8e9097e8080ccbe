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

# Sent by `form_index_sync` after every save of an indexed instance (a CRF, an adverse
# event, an SAE report), new or changed, inside the save's transaction and audit context:
# whatever vouches for the data as they were (an investigator's signature) learns that
# they may have changed. Arguments: entry (the FormIndexEntry as now saved),
# previous_version (the instance's version before the save; None for a new instance).
form_entry_saved = Signal()

# Sent by the visit services that change what a visit says of itself (its date, that it
# was missed), inside the service's transaction and audit context, sender Visit.
# Arguments: visit (as now saved), field (the model field that changed).
visit_changed = Signal()
