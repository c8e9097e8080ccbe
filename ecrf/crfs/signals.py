"""What a saved form tells the apps above crfs, which crfs never imports (safety...).

`crf_saved` is sent by crf_save with the form's model as sender, inside the save's
transaction and audit context: a receiver's writes commit or fail with the form and are
audited with its reason. Connect with the model you listen to as sender, never for all.
"""

from django.dispatch import Signal

# Arguments: instance (the saved form), by (the user who saved it).
crf_saved = Signal()
