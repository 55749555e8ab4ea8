from django.urls import path

from evaluation import api, views

app_name = "evaluation"
urlpatterns = [
    path("", views.IndexView.as_view(), name="index"),
    path("study/<int:pk>/", views.StudyDashboardView.as_view(), name="study"),
    path("study/<int:pk>/runs/", views.StartRunView.as_view(), name="start_run"),
    path("study/<int:pk>/exports/", views.ExportsView.as_view(), name="exports"),
    path("runs/<int:run_id>/progress/", views.RunProgressView.as_view(), name="run_progress"),
    path(
        "runs/<int:run_id>/tables/<slug:section>.csv",
        views.SectionCSVView.as_view(),
        name="section_csv",
    ),
    path(
        "runs/<int:run_id>/figures/<slug:section>.<str:fmt>",
        views.SectionFigureView.as_view(),
        name="section_figure",
    ),
    path("runs/<int:run_id>/exports/<str:name>", views.ExportView.as_view(), name="export"),
    path("api/studies/<int:pk>/runs/", api.StudyRunsView.as_view(), name="api-study-runs"),
    path("api/runs/<int:run_id>/", api.RunDetailView.as_view(), name="api-run"),
]
