from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RemindersConfig(AppConfig):
    """Reminders to the sites' staff: visits coming up or overdue, the pregnancy test before
    inclusion, SAE reports and SUSAR clocks. It reads every app's deadlines, so it sits
    above them; the mail itself goes through the notifications outbox."""

    name = "ecrf.reminders"
    label = "reminders"
    verbose_name = _("Reminders")
