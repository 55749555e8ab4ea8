from django.apps import AppConfig


class ModelsSvcConfig(AppConfig):
    name = "models_svc"
    verbose_name = "Model service"
