"""Django admin for the annotation app: batches, quizzes, crowd tasks (creating MTurk HITs),
crowd sessions (approving and paying through MTurk), bonuses and payouts.

Platform actions run only for admins (``games.roles.is_admin``), not for every staff user.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse

from games.roles import is_admin

from . import mturk
from .models import (
    AnnotationBatch,
    Assignment,
    BatchItem,
    Bonus,
    CrowdSession,
    CrowdTask,
    MTurkHIT,
    Payout,
    Quiz,
    QuizQuestion,
    TurnAnnotation,
)
from .validation import InputError


class QuizQuestionInline(admin.TabularInline):
    model = QuizQuestion
    extra = 1


@admin.register(Quiz)
class QuizAdmin(admin.ModelAdmin):
    list_display = ["name", "pass_mark", "max_attempts", "created_at"]
    inlines = [QuizQuestionInline]


class BatchItemInline(admin.TabularInline):
    model = BatchItem
    extra = 0
    fields = ["position", "game", "required_annotations", "is_gold"]
    readonly_fields = ["game"]


@admin.register(AnnotationBatch)
class AnnotationBatchAdmin(admin.ModelAdmin):
    list_display = ["name", "study", "round", "system", "is_open", "created_at"]
    list_filter = ["is_open", "study"]
    inlines = [BatchItemInline]


@admin.register(CrowdTask)
class CrowdTaskAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "key", "is_open", "mturk_sandbox", "created_at"]
    readonly_fields = ["key"]
    actions = ["create_mturk_hit"]

    @admin.action(description="Create an MTurk HIT for the selected tasks")
    def create_mturk_hit(self, request, queryset):
        if not is_admin(request.user):
            self.message_user(request, "Only admins may create HITs.", messages.ERROR)
            return
        for task in queryset:
            url = request.build_absolute_uri(reverse("annotation:mturk", kwargs={"key": task.key}))
            try:
                hit = mturk.create_hit(task, url)
            except InputError as error:
                self.message_user(request, f"{task}: {error.message}", messages.ERROR)
            else:
                mode = "sandbox" if hit.sandbox else "production"
                self.message_user(request, f"{task}: HIT {hit.hit_id} created ({mode})")


@admin.register(CrowdSession)
class CrowdSessionAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "platform", "worker", "external_id", "status", "created_at"]
    list_filter = ["platform", "status", "task"]
    readonly_fields = [f.name for f in CrowdSession._meta.fields]
    actions = ["approve_and_pay"]

    @admin.action(description="Approve and pay the selected MTurk sessions")
    def approve_and_pay(self, request, queryset):
        if not is_admin(request.user):
            self.message_user(request, "Only admins may pay workers.", messages.ERROR)
            return
        for session in queryset:
            try:
                payouts = mturk.approve_and_pay(session)
            except InputError as error:
                self.message_user(request, f"session {session.pk}: {error.message}", messages.ERROR)
                continue
            summary = ", ".join(f"{p.kind} {p.amount} {p.status}" for p in payouts)
            self.message_user(request, f"session {session.pk}: {summary or 'nothing owed'}")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "worker", "status", "started_at", "submitted_at"]
    list_filter = ["status", "batch"]
    readonly_fields = [f.name for f in Assignment._meta.fields]


@admin.register(TurnAnnotation)
class TurnAnnotationAdmin(admin.ModelAdmin):
    list_display = ["turn", "worker", "annotated_action", "satisfaction", "phase1_seconds"]
    readonly_fields = [f.name for f in TurnAnnotation._meta.fields]


@admin.register(Bonus)
class BonusAdmin(admin.ModelAdmin):
    list_display = ["worker", "session", "amount", "reason", "created_at"]
    raw_id_fields = ["worker", "session"]


@admin.register(Payout)
class PayoutAdmin(admin.ModelAdmin):
    list_display = ["session", "kind", "amount", "status", "created_at"]
    readonly_fields = [f.name for f in Payout._meta.fields]


@admin.register(MTurkHIT)
class MTurkHITAdmin(admin.ModelAdmin):
    list_display = ["hit_id", "task", "sandbox", "max_assignments", "reward", "created_at"]
