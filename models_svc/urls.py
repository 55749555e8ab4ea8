from django.urls import path

from . import api, views

app_name = "models_svc"
urlpatterns = [
    path("studies/<int:pk>/training/", views.TrainingView.as_view(), name="training"),
    path("studies/<int:pk>/training/launch/", views.LaunchRunView.as_view(), name="launch"),
    path("studies/<int:pk>/rounds/open/", views.OpenRoundView.as_view(), name="open_round"),
    path("training/<int:pk>/", views.RunView.as_view(), name="run"),
    path("training/<int:pk>/progress/", views.RunProgressView.as_view(), name="run_progress"),
    path("training/<int:pk>/cancel/", views.CancelRunView.as_view(), name="cancel"),
    path("training/<int:pk>/resume/", views.ResumeRunView.as_view(), name="resume"),
    path("checkpoints/", views.CheckpointsView.as_view(), name="checkpoints"),
    path(
        "api/studies/<int:pk>/training-runs/",
        api.StudyTrainingRunsView.as_view(),
        name="api-training-runs",
    ),
    path(
        "api/training-runs/<int:pk>/", api.TrainingRunDetailView.as_view(), name="api-training-run"
    ),
    path("checkpoints/<int:pk>/check/", views.CheckFilesView.as_view(), name="check_files"),
    path("checkpoints/<int:pk>/load/", views.LoadCheckView.as_view(), name="check_load"),
]
