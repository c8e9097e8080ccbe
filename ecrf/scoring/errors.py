"""Errors raised when the raw answers given to a scoring function are not acceptable.

Every error names the instrument, the offending key and what would have been accepted, so the
message can be shown to a data manager as it is.
"""


class ScoringInputError(ValueError):
    """An answer cannot be scored: unknown key, value outside the allowed set, or contradiction.

    ``instrument`` is the module name (``"mrss"``, ``"dlqi"``...), ``key`` the offending key and
    ``allowed`` a human-readable description of what the key (or the mapping) accepts.
    """

    def __init__(self, instrument: str, key: object, message: str, allowed: str) -> None:
        self.instrument = instrument
        self.key = key
        self.allowed = allowed
        super().__init__(f"{instrument}: {message}; allowed: {allowed}")


class UnknownKeyError(ScoringInputError):
    """The mapping contains a key that the instrument does not define."""

    def __init__(self, instrument: str, key: object, allowed_keys: tuple[str, ...]) -> None:
        super().__init__(
            instrument,
            key,
            f"unknown key {key!r}",
            "keys " + ", ".join(repr(allowed) for allowed in allowed_keys),
        )


class InvalidValueError(ScoringInputError):
    """A known key carries a value outside its allowed set (or contradicts another answer)."""

    def __init__(self, instrument: str, key: str, value: object, allowed: str) -> None:
        self.value = value
        super().__init__(instrument, key, f"{key!r} = {value!r} is not accepted", allowed)
