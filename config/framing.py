"""Security headers: a Content-Security-Policy on every page; crowd pages framed by MTurk.

MTurk shows a HIT's ExternalQuestion page, and everything a worker follows from it (consent,
quiz, survey, lobby, game), inside an iframe on its worker sites. Those views, named in
``CROWD_FRAMED_VIEWS`` as ``namespace:url_name``, are exempt from ``X-Frame-Options`` and get a
CSP whose ``frame-ancestors`` (and ``form-action``, for the HIT's final post back to MTurk) allow
``CROWD_FRAME_ANCESTORS``; every other page may not be framed at all.
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


def is_crowd_framed(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    return match is not None and match.view_name in settings.CROWD_FRAMED_VIEWS


def crowd_frame_policy() -> dict[str, list[str]]:
    allowed = ["'self'", *settings.CROWD_FRAME_ANCESTORS]
    return {"frame-ancestors": allowed, "form-action": allowed}


class CrowdFrameExemptMiddleware:
    """Marks crowd pages exempt from Django's ``XFrameOptionsMiddleware`` (listed before it)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if is_crowd_framed(request):
            response.xframe_options_exempt = True
        return response


class CrowdCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, with the crowd pages' framing policy."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and is_crowd_framed(request):
            parts.replace = {**(parts.replace or {}), **crowd_frame_policy()}
        return parts
