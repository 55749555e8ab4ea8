"""The one application error of the project and the DRF exception handler that answers it.

Services and validators raise ``ApplicationError`` (or a subclass, such as
``annotation.validation.InputError``) when they refuse something; nothing has been written by
then. API views do not catch it: ``exception_handler`` (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``)
turns it into ``{"error": message, "field": field, **extra}`` with the error's status. Pages
that render a refusal use ``message_for`` so they all word it the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback


class ApplicationError(Exception):
    """A refusal the user can act on: ``message`` says why, ``field`` names the input at fault
    (``None`` when no single input is), ``status`` is the HTTP status of the answer and ``extra``
    adds keys to the JSON body."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int = 400,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field
        self.status = status
        self.extra = dict(extra or {})

    def as_json(self) -> dict[str, object]:
        return {"error": self.message, "field": self.field, **self.extra}


def message_for(error: ApplicationError) -> str:
    """The refusal as one line for a page: ``field: message`` (or the message alone)."""
    return str(error)


def exception_handler(exc: Exception, context: Mapping[str, object]) -> Response | None:
    """DRF's handler, answering an ``ApplicationError`` with its JSON body and status."""
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(exc.as_json(), status=exc.status)
    return drf_exception_handler(exc, context)
