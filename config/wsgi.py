"""WSGI entry point (HTTP only; real-time play needs the ASGI server)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

from config.checks import refuse_public_keys  # noqa: E402

refuse_public_keys()
