from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SafetyConfig(AppConfig):
    name = "ecrf.safety"
    verbose_name = _("Safety")

    def ready(self) -> None:
        from ecrf.crfs.models import SafetyLabs
        from ecrf.crfs.signals import crf_saved
        from ecrf.safety import receivers

        crf_saved.connect(
            receivers.safety_labs_saved, sender=SafetyLabs, dispatch_uid="safety.lab_alerts"
        )
