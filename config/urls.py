"""Top-level URLs: each app mounts its own pages and API under its prefix."""

from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.login_throttle import ThrottledAdminAuthenticationForm, ThrottledAuthenticationForm

admin.site.login_form = ThrottledAdminAuthenticationForm
# Swagger UI comes from drf-spectacular's CDN; the split view serves its setup script as a file.
SWAGGER_CDN = "https://cdn.jsdelivr.net"
swagger_csp = csp_update({"script-src": [SWAGGER_CDN], "style-src": [SWAGGER_CDN]})

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        swagger_csp(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("annotation/", include("annotation.urls")),
    path("evaluation/", include("evaluation.urls")),
    path("models/", include("models_svc.urls")),
    path("", include("games.urls")),
]
