"""A URL configuration without the games lobby, as before live play existed."""

from django.urls import include, path

urlpatterns = [path("annotation/", include("annotation.urls"))]
