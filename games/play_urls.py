"""URLs of live play, mounted under ``play/`` in the ``games`` namespace (games/urls.py)."""

from django.urls import path

from games.live import views

urlpatterns = [
    path("lobby/<int:round_id>/", views.lobby_view, name="lobby"),
    path("lobby/<int:round_id>/leave/", views.lobby_leave, name="play_lobby_leave"),
    path("lobby/<int:round_id>/local/", views.local_entry, name="play_local_entry"),
    path("game/<int:game_id>/", views.play_game, name="play_game"),
    path("game/<int:game_id>/survey/", views.play_survey, name="play_survey"),
    path("game/<int:game_id>/done/", views.play_done, name="play_done"),
    path("live/<int:study_id>/", views.live_page, name="play_live"),
    path("live/<int:study_id>/data/", views.live_data, name="play_live_data"),
]
