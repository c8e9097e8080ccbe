from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

# The session key that shows the menu's "Exports" link (set at login, see `ready`).
MENU_FLAG = "may_export"


def _remember_may_export(sender, request, user, **kwargs):
    """At login, whether the user may export somewhere: the menu of every page shows the
    link from the session, at no query per page (a courtesy: the screen is the control)."""
    from ecrf.exports.jobs import export_studies_for

    if request is not None and hasattr(request, "session"):
        request.session[MENU_FLAG] = export_studies_for(user).exists()


class ExportsConfig(AppConfig):
    """The administrators' data export: a study's forms as files for the statisticians'
    tools, with their data dictionary and a manifest, each export audited."""

    name = "ecrf.exports"
    verbose_name = _("Exports")

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in

        user_logged_in.connect(
            _remember_may_export, sender=get_user_model(), dispatch_uid="exports-menu"
        )
