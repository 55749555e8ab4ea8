"""Post-hoc annotations of turns (the two-phase survey) and the crowd machinery around them."""

from __future__ import annotations

from django.db import models

from games.models import Turn, Worker


class Satisfaction(models.TextChoices):
    """Phase-2 answers; DESIGN.md maps them to feedback classes (a setting in evaluation)."""

    YES = "yes", "yes"
    YES_INCOMPLETE = "yes_incomplete", "yes, though not all required selections were made"
    YES_WRONG = "yes_wrong", "yes, though some selections were wrong"
    NO = "no", "no"
    NONE = "", "no follow-up (last turn)"


class TurnAnnotation(models.Model):
    """One annotator's two-phase answer for a turn: ground-truth action a* and satisfaction."""

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="annotations")
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="annotations")
    annotated_action = models.CharField(
        max_length=120, blank=True, help_text="a*: canonical action string ('' = do nothing)"
    )
    satisfaction = models.CharField(
        max_length=16, choices=Satisfaction.choices, blank=True, default=""
    )
    phase1_seconds = models.FloatField(null=True, blank=True)
    phase2_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["turn", "worker"], name="annotation_unique_per_worker"),
        ]

    def __str__(self) -> str:
        return f"{self.turn} by {self.worker}"
