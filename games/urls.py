from django.urls import URLPattern, URLResolver, include, path

from games import views

app_name = "games"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.HomeView.as_view(), name="home"),
    path("studies/<int:pk>/", views.StudyView.as_view(), name="study"),
    path("games/<int:pk>/", views.GameView.as_view(), name="game"),
    path("tangrams/<str:name>.png", views.tangram_image, name="tangram_image"),
]
urlpatterns += [path("play/", include("games.play_urls"))]  # live play (real-time games)
