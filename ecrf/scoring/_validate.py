"""Input checks shared by the instruments (private to the package)."""

from collections.abc import Iterable, Mapping

from .errors import InvalidValueError, UnknownKeyError

#: How a blank answer is described in error messages: ``None`` (or an absent key) is "not answered".
BLANK = "None (blank)"


def describe(values: Iterable[object]) -> str:
    """Render an allowed set of values for an error message, blank included."""
    return ", ".join(repr(value) for value in values) + " or " + BLANK


def check_keys(instrument: str, data: Mapping[str, object], allowed: tuple[str, ...]) -> None:
    """Reject the first key of ``data`` that is not one of ``allowed``."""
    for key in data:
        if key not in allowed:
            raise UnknownKeyError(instrument, key, allowed)


def is_int(value: object) -> bool:
    """True for integers; booleans are not integers here."""
    return isinstance(value, int) and not isinstance(value, bool)


def choice[T](instrument: str, key: str, value: object, table: Mapping[object, T]) -> T | None:
    """Look an answer up in ``table`` (``None`` means not answered).

    Only ``str`` and ``int`` answers are looked up, so that ``True`` or ``1.0`` (which compare
    equal to ``1``) cannot slip through a dictionary lookup.
    """
    if value is None:
        return None
    if (isinstance(value, str) or is_int(value)) and value in table:
        return table[value]
    raise InvalidValueError(instrument, key, value, describe(table))


def flag(instrument: str, key: str, value: object) -> bool:
    """A yes/no finding or tick box: ``True``, ``False``, or ``None`` (not ticked)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    raise InvalidValueError(instrument, key, value, describe((True, False)))
