"""Admin pages of the model service: checkpoints per study round, decoding runs, embeddings.

Nothing here imports torch: file checks run in the web process, loading checks and decoding
are queued on the ``gpu-batch`` queue.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction

from config import heartbeat

from .checkpoint_paths import confined_spec
from .interfaces import CheckpointError
from .models import (
    DecodeRun,
    EmbeddingSet,
    ModelCheckpoint,
    ScoringRun,
    TrainingManifest,
    TrainingRun,
)
from .registry import parse_spec


@admin.action(description="Restart the selected runs that are stale (their worker stopped)")
def restart_stale_runs(modeladmin, request, queryset) -> None:
    """Queue again each selected run whose heartbeat is older than its stale setting."""
    with transaction.atomic():
        restarted = sum(heartbeat.requeue_if_stale(run) for run in queryset)
    modeladmin.message_user(
        request,
        f"{restarted} stale run(s) queued again; runs whose worker still reports were left alone.",
        messages.SUCCESS if restarted else messages.INFO,
    )


class CheckpointForm(forms.ModelForm):
    """The admin's checkpoint form (the admin adds the fields): the spec must parse."""

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if data.get("spec") and data.get("kind"):
            try:
                parse_spec(data["spec"], data["kind"])
            except CheckpointError as exc:
                self.add_error("spec", str(exc))
        return data


@admin.register(ModelCheckpoint)
class ModelCheckpointAdmin(admin.ModelAdmin):
    form = CheckpointForm
    list_display = ("study", "round_index", "kind", "spec", "status", "model_version", "checked_at")
    list_filter = ("kind", "status", "round__study")
    search_fields = ("spec", "notes")
    readonly_fields = ("status", "status_message", "model_version", "checked_at", "created_at")
    actions = ("check_files", "check_on_worker", "embed_tangrams")

    @admin.display(description="study", ordering="round__study__name")
    def study(self, obj: ModelCheckpoint) -> str:
        return obj.round.study.name if obj.round else "(all)"

    @admin.display(description="round", ordering="round__index")
    def round_index(self, obj: ModelCheckpoint):
        return obj.round.index if obj.round else "-"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("round__study")

    def changelist_view(self, request, extra_context=None):
        from .services import register_system_checkpoints

        created = register_system_checkpoints()
        if created:
            self.message_user(request, f"Registered {created} checkpoint(s) named by systems.")
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change):
        from .services import check_checkpoint_files

        super().save_model(request, obj, form, change)
        check_checkpoint_files(obj)

    @admin.action(description="Check the files of the selected checkpoints now")
    def check_files(self, request, queryset) -> None:
        from .services import check_checkpoint_files

        for checkpoint in queryset:
            check_checkpoint_files(checkpoint)
        self.message_user(request, f"Checked {queryset.count()} checkpoint(s).")

    @admin.action(description="Load the selected checkpoints on a GPU worker (queued)")
    def check_on_worker(self, request, queryset) -> None:
        from .checkpoint_registration import queue_loading_check

        checkpoints = list(queryset)
        for checkpoint in checkpoints:
            queue_loading_check(checkpoint)
        self.message_user(
            request,
            f"Queued {len(checkpoints)} loading check(s) on the {settings.GPU_BATCH_QUEUE} queue.",
        )

    @admin.action(description="Embed all tangrams with the selected embedders (queued)")
    def embed_tangrams(self, request, queryset) -> None:
        from .checkpoint_registration import queue_embedding

        specs = list(
            queryset.filter(kind=ModelCheckpoint.Kind.EMBEDDER).values_list("spec", flat=True)
        )
        for spec in specs:
            queue_embedding(spec)
        level = messages.INFO if specs else messages.WARNING
        self.message_user(
            request,
            f"Queued embedding with {len(specs)} embedder checkpoint(s) on the "
            f"{settings.GPU_BATCH_QUEUE} queue.",
            level,
        )


class DecodeRunForm(forms.ModelForm):
    class Meta:
        model = DecodeRun
        fields = ("study", "round_index", "system_name", "decoder", "kind")
        help_texts = {"decoder": "lexicon, or hf:PATH to a checkpoint directory on the GPU workers"}

    def clean(self):
        super().clean()
        data = self.cleaned_data
        study, round_index, system = (
            data.get("study"),
            data.get("round_index"),
            data.get("system_name"),
        )
        try:
            spec = confined_spec(parse_spec(data.get("decoder") or "lexicon", "decoder"))
        except CheckpointError as exc:
            self.add_error("decoder", str(exc))
        else:
            data["decoder"] = str(spec)
        if (
            study is not None
            and round_index is not None
            and not study.rounds.filter(index=round_index).exists()
        ):
            self.add_error("round_index", f"study {study.name!r} has no round {round_index}")
        if study is not None and system and not study.rounds.filter(systems__name=system).exists():
            self.add_error("system_name", f"study {study.name!r} has no system {system!r}")
        return data


@admin.register(DecodeRun)
class DecodeRunAdmin(admin.ModelAdmin):
    form = DecodeRunForm
    list_display = (
        "study",
        "round_index",
        "system_name",
        "decoder",
        "kind",
        "status",
        "progress",
        "created",
        "created_at",
    )
    list_filter = ("status", "kind", "study")
    actions = (restart_stale_runs,)
    readonly_fields = (
        "status",
        "total",
        "done",
        "created",
        "error",
        "requested_by",
        "created_at",
        "finished_at",
    )

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("study", "round_index", "system_name", "decoder", "kind")
        return super().get_fields(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        from .services import launch_decode_run

        if change:
            return
        obj.requested_by = request.user
        with transaction.atomic():
            launch_decode_run(obj)
        messages.info(
            request,
            f"Decoding queued on the {settings.GPU_BATCH_QUEUE} queue; this page shows its "
            "progress.",
        )


@admin.register(EmbeddingSet)
class EmbeddingSetAdmin(admin.ModelAdmin):
    list_display = ("embedder", "model_version", "dim", "tangram_count", "updated_at")
    readonly_fields = ("embedder", "model_version", "dim", "names", "created_at", "updated_at")
    exclude = ("similarity",)

    @admin.display(description="tangrams")
    def tangram_count(self, obj: EmbeddingSet) -> int:
        return len(obj.names)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(TrainingManifest)
class TrainingManifestAdmin(admin.ModelAdmin):
    """Manifests are immutable: they can be read (and deleted with their study), never edited."""

    list_display = ("study", "role", "system_name", "round_index", "size", "kind", "created_at")
    list_filter = ("role", "study")
    readonly_fields = [f.name for f in TrainingManifest._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    """Runs are launched and followed from the study's Training page; here for admins."""

    list_display = ("pk", "study", "system_name", "round_index", "objective", "status", "epoch")
    list_filter = ("status", "objective", "study")
    readonly_fields = [f.name for f in TrainingRun._meta.fields if f.name != "cancel_requested"]
    actions = (restart_stale_runs,)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ScoringRun)
class ScoringRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "study", "policy", "status", "done", "total", "scored", "created_at")
    readonly_fields = [f.name for f in ScoringRun._meta.fields]
    actions = (restart_stale_runs,)

    def has_add_permission(self, request) -> bool:
        return False
