from django.contrib import admin

from evaluation.models import MetricRun


@admin.register(MetricRun)
class MetricRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "study",
        "status",
        "progress",
        "resamples",
        "seed",
        "conventions",
        "created_at",
    )
    list_filter = ("status", "conventions", "study")
    readonly_fields = (
        "status",
        "progress",
        "message",
        "parameters",
        "code_version",
        "data_stamp",
        "results",
        "error",
        "task_id",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    )
