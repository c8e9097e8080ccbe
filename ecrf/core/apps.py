from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "ecrf.core"
    label = "core"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from ecrf.core.middleware import SessionIdleExpiry

        user_logged_in.connect(SessionIdleExpiry.on_login, dispatch_uid="session-idle-expiry")
