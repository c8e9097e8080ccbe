from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "ecrf.audit"
    label = "audit"
    verbose_name = _("Audit trail")

    def ready(self) -> None:
        from ecrf.audit import roles, signals, triggers

        signals.connect()
        # After every migrate (including the test database's), make every audit table
        # refuse UPDATE and DELETE at the database level.
        post_migrate.connect(triggers.install_append_only_triggers, sender=self)
        # Where setup_db_roles was run: the new tables get the application role's grants
        # (the audit ones only INSERT and SELECT).
        post_migrate.connect(roles.regrant_after_migrate, sender=self)
