"""Checks at the edge for everything a crowdworker or a platform sends (pure; no ORM)."""

from __future__ import annotations

import re

from django.conf import settings

from config.errors import ApplicationError

_PLATFORM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?]|javascript:|on[a-z]+\s*=", re.IGNORECASE)


class InputError(ApplicationError, ValueError):
    """Refused input; ``field`` names what was wrong, the message says why. The API answers it
    as every ``ApplicationError`` (``config.errors.exception_handler``)."""

    field: str

    def __init__(self, field: str, message: str, *, status: int = 400) -> None:
        super().__init__(message, field=field, status=status)


def platform_id(field: str, value: str | None, *, required: bool = True) -> str:
    """A platform identifier (worker, study, session, assignment, HIT): 1-64 of [A-Za-z0-9_-]."""
    value = (value or "").strip()
    if not value:
        if required:
            raise InputError(field, "is missing")
        return ""
    if not _PLATFORM_ID.fullmatch(value):
        raise InputError(field, "must be 1-64 letters, digits, '-' or '_'")
    return value


def free_text(field: str, value: object, *, max_chars: int | None = None) -> str:
    """Optional free text: a string of bounded length that carries no markup or script."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(field, "must be text")
    limit = max_chars or settings.ANNOTATION_MAX_TEXT_CHARS
    if len(value) > limit:
        raise InputError(field, f"is {len(value)} characters long; at most {limit} are allowed")
    if _MARKUP.search(value):
        raise InputError(field, "must not contain HTML tags or script")
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise InputError(field, "must not contain control characters")
    return value.strip()
