"""Exceptions the services raise and the views turn into a clear page."""


class StaleVersion(Exception):
    """Somebody saved the same record since this user loaded it (HTTP 409)."""

    def __init__(self, label: str):
        self.label = label
        super().__init__(f"{label} was changed by someone else since you opened it")
