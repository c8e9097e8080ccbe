from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrfsConfig(AppConfig):
    name = "ecrf.crfs"
    label = "crfs"
    verbose_name = _("Case report forms")

    def ready(self) -> None:
        from ecrf.crfs import checks  # noqa: F401 (registers the form registry's check)
