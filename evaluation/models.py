"""Metric runs: one computation of every study metric, with its parameters and results.

A run is created ``queued``, claimed by a Celery worker (``running``, with ``progress``,
``message`` and its heartbeat updated as it goes; ``config.heartbeat``) and ends ``done`` with
``results`` (the JSON that ``compute_metrics --json`` prints) or ``failed`` with ``error``. The
same inputs, parameters (``conventions`` included) and code version give the same results, so a
stale run (its worker was killed) is simply computed again.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from config.heartbeat import HeartbeatRun
from games.models import Study


class MetricRun(HeartbeatRun):
    task_name = "evaluation.tasks.compute_metric_run"
    task_queue = "default"

    class Method(models.TextChoices):
        BCA = "bca", "BCa (bias-corrected and accelerated)"
        PERCENTILE = "percentile", "percentile"

    class Conventions(models.TextChoices):
        """Names of ``evaluation.stats.conventions.CONVENTIONS``."""

        PLATFORM = "platform", "platform"
        PAPER = "paper", "paper (ReSpect study)"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="metric_runs")
    progress = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    message = models.CharField(max_length=300, blank=True)
    resamples = models.PositiveIntegerField(
        default=10_000, validators=[MinValueValidator(1), MaxValueValidator(1_000_000)]
    )
    seed = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    confidence = models.FloatField(
        default=0.95, validators=[MinValueValidator(0.5), MaxValueValidator(0.999)]
    )
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.BCA)
    conventions = models.CharField(
        max_length=10,
        choices=Conventions.choices,
        default=Conventions.PLATFORM,
        help_text="metric definitions: the platform's or the ReSpect paper's",
    )
    parameters = models.JSONField(
        default=dict, blank=True, help_text="every parameter, the code version and the inputs used"
    )
    code_version = models.CharField(max_length=80, blank=True)
    data_stamp = models.JSONField(
        default=dict, blank=True, help_text="counts and latest changes of the inputs, when run"
    )
    results = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = "created_at"
        indexes = [models.Index(fields=["study", "status", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=1), name="metric_run_progress_range"
            ),
            models.CheckConstraint(condition=Q(resamples__gte=1), name="metric_run_resamples_min"),
            models.CheckConstraint(condition=Q(seed__gte=0), name="metric_run_seed_min"),
            models.CheckConstraint(
                condition=Q(status="done") | Q(results__isnull=True),
                name="metric_run_results_only_when_done",
            ),
        ]

    def __str__(self) -> str:
        return f"metrics of {self.study.name} #{self.pk} ({self.status})"
