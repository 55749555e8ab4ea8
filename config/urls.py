"""Top-level URLs: each app mounts its own pages and API under its prefix."""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.login_throttle import ThrottledAdminAuthenticationForm, ThrottledAuthenticationForm

admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    # The API's schema and its docs are for signed-in users (researchers, admins) only: they map
    # every endpoint and parameter, which helps nobody outside the study.
    path("api/schema/", login_required(SpectacularAPIView.as_view()), name="api-schema"),
    path(
        "api/docs/",
        # Swagger UI's files are served by the app (sidecar); the split view serves its set-up
        # script as a file, so the page needs no inline script under the CSP.
        login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("annotation/", include("annotation.urls")),
    path("evaluation/", include("evaluation.urls")),
    path("models/", include("models_svc.urls")),
    path("studies/", include("evaluation.board.urls")),
    path("", include("games.urls")),
]
