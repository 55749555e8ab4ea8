"""The project's own app: production checks, login throttling and security middleware."""

from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "config"
    label = "platform"
    verbose_name = "Platform"

    def ready(self) -> None:
        from . import checks, login_throttle  # noqa: F401  (registers checks and signal handlers)
