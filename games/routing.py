"""Websocket routes for real-time play."""

from django.urls import path

from games.live.consumers import GameConsumer
from games.live.lobby_consumer import LobbyConsumer

websocket_urlpatterns: list = [
    path("ws/play/game/<int:game_id>/", GameConsumer.as_asgi()),
    path("ws/play/lobby/<int:round_id>/", LobbyConsumer.as_asgi()),
]
