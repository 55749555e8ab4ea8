"""Websocket routes for real-time play."""

websocket_urlpatterns: list = []
