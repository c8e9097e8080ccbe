from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExportsConfig(AppConfig):
    """The administrators' data export: a study's forms as files for the statisticians'
    tools, with their data dictionary and a manifest, each export audited."""

    name = "ecrf.exports"
    verbose_name = _("Exports")
