"""The API's JSON parser: DRF's, with bounded nesting and size (``config.bounded_json``).

DRF's ``JSONParser`` catches ``ValueError`` only, so a body nested ten thousand levels deep
ends in ``RecursionError`` and a 500. ``BoundedJSONParser`` decodes with ``bounded_json.loads``:
too deep, too many values or malformed bodies are a 400 whose message quotes at most a short part
of the input. (Django refuses bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` before parsing.)
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json as drf_json

from config import bounded_json
from config.echo import clipped


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context=None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
            parse_constant = drf_json.strict_constant if self.strict else None
            return bounded_json.loads(text, parse_constant=parse_constant)
        except ValueError as error:  # UnicodeDecodeError, JSONDecodeError, JSONLimitError
            raise ParseError(f"JSON parse error - {clipped(str(error))}") from error
