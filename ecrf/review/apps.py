from django.apps import AppConfig


class ReviewConfig(AppConfig):
    """What monitors and data managers read and act on: today the readable audit trail.

    It names the rows of every app (visits, forms, adverse events), so it sits above them;
    the `audit` app below only records, and any app may use it."""

    name = "ecrf.review"
    verbose_name = "Review"
