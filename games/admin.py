"""Admin pages for the games models.

Workers appear only by platform and keyed hash: the encrypted platform id is neither listed nor
shown in the form (payments read it through ``games.workers`` where an admin needs it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html

from games.models import (
    FeedbackLabel,
    Game,
    GameConfig,
    Round,
    Study,
    System,
    Tangram,
    Turn,
    Worker,
)
from games.tangrams import tangram_image_url

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

TURN_INLINE_FIELDS = ("index", "utterance", "action", "action_reason", "action_probability")


class _SystemCount(TypedDict):
    n_systems: int


@admin.register(Tangram)
class TangramAdmin(admin.ModelAdmin):
    list_display = ["name", "split", "source", "thumbnail"]
    list_filter = ["split", "source"]
    search_fields = ["name"]

    @admin.display(description="image")
    def thumbnail(self, tangram: Tangram) -> str:
        if not tangram.image:
            return "—"
        return format_html(
            '<img src="{}" alt="{}" width="48" height="48">',
            tangram_image_url(tangram.name),
            tangram.name,
        )


class RoundInline(admin.TabularInline):
    model = Round
    extra = 0
    fields = ["index", "notes"]


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "context_size",
        "min_targets",
        "max_targets",
        "turn_limit",
        "created_at",
    ]
    search_fields = ["name", "description"]
    inlines = [RoundInline]


class SystemInline(admin.TabularInline):
    model = System
    extra = 0
    fields = ["name", "policy_checkpoint", "decoder"]


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ["study", "index", "system_count", "created_at"]
    list_filter = ["study"]
    list_select_related = ["study"]
    inlines = [SystemInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_systems=Count("systems"))

    @admin.display(description="systems", ordering="n_systems")
    def system_count(self, round_: WithAnnotations[Round, _SystemCount]) -> int:
        return round_.n_systems


@admin.register(System)
class SystemAdmin(admin.ModelAdmin):
    list_display = ["name", "round", "policy_checkpoint", "decoder"]
    list_filter = ["round__study", "round__index", "name"]
    list_select_related = ["round__study"]
    search_fields = ["name", "policy_checkpoint", "decoder"]


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["id_hash", "platform", "created_at"]
    list_filter = ["platform"]
    search_fields = ["id_hash"]
    fields = ["platform", "id_hash", "created_at"]
    readonly_fields = ["platform", "id_hash", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(GameConfig)
class GameConfigAdmin(admin.ModelAdmin):
    list_display = ["pk", "study", "target_count", "seed", "created_at"]
    list_filter = ["study"]
    list_select_related = ["study"]

    @admin.display(description="targets")
    def target_count(self, config: GameConfig) -> int:
        return len(config.targets)


class TurnInline(admin.TabularInline):
    model = Turn
    extra = 0
    fields = TURN_INLINE_FIELDS
    readonly_fields = TURN_INLINE_FIELDS
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Game)
class GameAdmin(admin.ModelAdmin):
    list_display = ["external_id", "study", "round_index", "system", "status", "outcome"]
    list_filter = ["study", "round__index", "system__name", "status", "outcome"]
    list_select_related = ["study", "round", "system"]
    search_fields = ["external_id", "speaker__id_hash", "listener__id_hash"]
    raw_id_fields = ["config", "speaker", "listener"]
    date_hierarchy = "created_at"
    inlines = [TurnInline]

    @admin.display(description="round", ordering="round__index")
    def round_index(self, game: Game) -> int:
        return game.round.index


@admin.register(Turn)
class TurnAdmin(admin.ModelAdmin):
    list_display = ["game", "index", "utterance", "action", "action_probability"]
    list_filter = ["game__study", "game__system__name", "action_reason"]
    list_select_related = ["game"]
    search_fields = ["utterance", "game__external_id"]
    raw_id_fields = ["game"]


@admin.register(FeedbackLabel)
class FeedbackLabelAdmin(admin.ModelAdmin):
    list_display = ["turn", "decoder", "model_version", "kind", "label", "score"]
    list_filter = ["kind", "label", "decoder"]
    list_select_related = ["turn__game"]
    raw_id_fields = ["turn"]
