"""A logging filter that keeps crowdworker identities out of the platform's logs.

Platform arrivals carry raw worker ids in their query (Prolific's ``PROLIFIC_PID``, MTurk's
``workerId`` and ``assignmentId``), and worker pages carry a crowd-session token in their path
(``/annotation/w/<token>/``). Request logs (``django.request``, runserver's ``django.server``)
write those URLs; this filter rewrites each record's message with the values replaced.
"""

from __future__ import annotations

import logging
import re

REDACTED = "<redacted>"
QUERY_NAMES = ("PROLIFIC_PID", "SESSION_ID", "workerId", "assignmentId", "token")
_QUERY_VALUE = re.compile(r"(?<=[?&;])(" + "|".join(QUERY_NAMES) + r")=[^&;#\s\"'<>]*")
_TOKEN_PATH = re.compile(r"(/annotation/w/)[^/?#\s\"'<>]+")


def redact(text: str) -> str:
    text = _QUERY_VALUE.sub(rf"\1={REDACTED}", text)
    return _TOKEN_PATH.sub(rf"\1{REDACTED}", text)


class RedactCrowdIds(logging.Filter):
    """Rewrites every record's message (arguments included) with ids and tokens redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
