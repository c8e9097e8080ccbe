from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "ecrf.core"
    label = "core"
