from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReviewConfig(AppConfig):
    """What monitors and data managers read and act on: the readable audit trail and source
    data verification (later: queries, locks, signatures).

    It names the rows of every app (visits, forms, adverse events), so it sits above them;
    the `audit` app below only records, and any app may use it."""

    name = "ecrf.review"
    verbose_name = _("Review")

    def ready(self) -> None:
        from ecrf.patients.models import FormIndexEntry, Visit
        from ecrf.patients.signals import form_entry_changed, form_entry_saved, visit_changed
        from ecrf.review import receivers

        form_entry_changed.connect(
            receivers.form_entry_changed, sender=FormIndexEntry, dispatch_uid="review.sdv_reset"
        )
        form_entry_saved.connect(
            receivers.form_entry_saved, sender=FormIndexEntry, dispatch_uid="review.signature_void"
        )
        visit_changed.connect(
            receivers.visit_changed, sender=Visit, dispatch_uid="review.signature_void_visit"
        )
