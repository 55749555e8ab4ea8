"""Websocket routes of every app, gathered for the ASGI router; a socket for any other path is
refused at the handshake (``NoRouteConsumer``), never answered with a router traceback."""

from django.urls import re_path

from games.live.sockets import NoRouteConsumer
from games.routing import websocket_urlpatterns as games_websockets

websocket_urlpatterns = [*games_websockets, re_path(r"", NoRouteConsumer.as_asgi())]
