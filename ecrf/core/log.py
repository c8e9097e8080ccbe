"""Logging filters for the settings' LOGGING."""

from __future__ import annotations

import logging


class ClientErrorWithoutTraceback(logging.Filter):
    """A 4xx (a refused permission, a missing page) is the client's doing, not a fault:
    one line names it, with no traceback to read as if the application had crashed."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
