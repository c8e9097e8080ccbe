from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo: `seed_demo` writes patients at every stage through every app's services,
    and `run_demo` serves them. It sits above every app, and no app imports it."""

    name = "ecrf.demo"
    label = "demo"
