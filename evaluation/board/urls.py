"""URLs of the round board, mounted under ``studies/`` (config/urls.py) in namespace ``board``."""

from django.urls import path

from evaluation.board import seed_views, views

app_name = "board"
urlpatterns = [
    path("<int:pk>/board/", views.BoardView.as_view(), name="study"),
    path("<int:pk>/board/lobby/", views.LobbyView.as_view(), name="lobby"),
    path("<int:pk>/board/auto-decode/", views.AutoDecodeView.as_view(), name="auto_decode"),
    path("<int:pk>/board/decode/", views.DecodeView.as_view(), name="decode"),
    path(
        "<int:pk>/board/decode-lineage/",
        views.DecodeLineageView.as_view(),
        name="decode_lineage",
    ),
    path("<int:pk>/board/metrics/", views.MetricsView.as_view(), name="metrics"),
    path("<int:pk>/board/train/", views.TrainView.as_view(), name="train"),
    path("<int:pk>/board/next-round/", views.NextRoundView.as_view(), name="next_round"),
    path("<int:pk>/board/seed-set/", seed_views.SeedSetView.as_view(), name="seed_set"),
    path("<int:pk>/board/seed-run/", seed_views.SeedRunView.as_view(), name="seed_run"),
    path("<int:pk>/board/seed-deploy/", seed_views.DeploySeedView.as_view(), name="seed_deploy"),
]
