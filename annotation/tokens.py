"""Capability tokens for crowd sessions.

Worker pages run inside the MTurk iframe, where third-party cookies are often blocked, and a
worker may continue on a second device; so a worker's pages and API calls carry a signed token
of their crowd session (in the URL path, or the ``X-Worker-Token`` header) instead of relying on
a cookie. The token is unforgeable without ``SECRET_KEY`` and names nothing but the session.
Tokens end up in access logs and browser histories, so they expire ``WORKER_TOKEN_MAX_AGE``
seconds after they were issued; a worker who comes back through the platform's link gets a new
one.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing

from .models import CrowdSession

SALT = "annotation.crowd-session"
# Texts and MTurk settings of the task are not needed on every worker request.
DEFERRED_TASK_FIELDS = (
    "task__consent_text",
    "task__guidelines",
    "task__mturk_title",
    "task__mturk_description",
    "task__mturk_keywords",
)


def session_token(session: CrowdSession) -> str:
    return signing.dumps(session.pk, salt=SALT)


def session_from_token(token: str | None) -> CrowdSession | None:
    if not token or len(token) > 200:
        return None
    try:
        pk = signing.loads(token, salt=SALT, max_age=settings.WORKER_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(pk, int):
        return None
    return CrowdSession.objects.select_related("task", "worker").filter(pk=pk).first()
