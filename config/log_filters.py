"""Logging filters named by ``LOGGING`` in config/settings.py."""

from __future__ import annotations

import logging


class ClientErrorWithoutTraceback(logging.Filter):
    """A refused or missing page (a 4xx response) is logged as its one line, never with the
    traceback of the ``PermissionDenied`` or ``Http404`` that produced it: that is how the view
    answers, not a fault; so is a request for a host outside ``ALLOWED_HOSTS``
    (``django.security.DisallowedHost``, a 400). Server errors (5xx) keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
