from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation and crowd platforms"

    def ready(self) -> None:
        from games.live.admission import register_participant_check

        from .lobby_admission import participant_refusal

        register_participant_check(participant_refusal)
