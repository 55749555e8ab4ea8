"""ASGI entry point: HTTP through Django, websockets through Channels (real-time play)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from config.checks import refuse_public_keys  # noqa: E402

refuse_public_keys()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402

from config.arrivals import ArrivalGate  # noqa: E402
from config.page_threads import PageThreads  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

# Lobby arrivals beyond what the process takes at once are asked to retry (config.arrivals).
# Sockets get the session (read lazily by the consumers, in their own thread pools) and no
# ``scope["user"]``: Channels' AuthMiddleware loads the user in the process's one thread for
# synchronous code before every handshake, behind every page being rendered, so a burst of page
# loads held the handshakes until the server cut them. Pages run a few at a time
# (config.page_threads).
application = ArrivalGate(
    ProtocolTypeRouter(
        {
            "http": PageThreads(django_asgi_app),
            "websocket": AllowedHostsOriginValidator(
                SessionMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    )
)
