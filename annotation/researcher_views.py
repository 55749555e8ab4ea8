"""Researcher pages: annotation batches and game-round tasks (lists, creation, detail).

Both creation forms are validated by the API's serializers and ``annotation.creation``, so the
page and the API accept and refuse exactly the same input; errors are shown next to the field.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from games.roles import is_admin

from . import page_forms, selectors
from .api import (
    BatchCreateSerializer,
    GameTaskSerializer,
    create_validated_batch,
    create_validated_game_task,
)
from .models import AnnotationBatch, CrowdTask
from .validation import InputError
from .views import researcher_required


def _crowd_links(request: HttpRequest, task: CrowdTask) -> dict[str, str]:
    prolific = request.build_absolute_uri(reverse("annotation:prolific", args=[task.key]))
    return {
        "prolific": prolific + "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}"
        "&SESSION_ID={{%SESSION_ID%}}",
        "mturk": request.build_absolute_uri(reverse("annotation:mturk", args=[task.key])),
    }


@researcher_required
def batch_list(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else None
    fields = page_forms.batch_fields(data)
    errors: dict[str, str] = {}
    if data is not None:
        form = BatchCreateSerializer(data=data)
        if form.is_valid():
            try:
                batch = create_validated_batch(form.validated_data, request.user)
            except InputError as error:
                errors = page_forms.input_error(error, fields)
            else:
                return redirect("annotation:batch-detail", pk=batch.pk)
        else:
            errors = page_forms.flat_errors(form.errors)
    context = {
        "batches": AnnotationBatch.objects.select_related("round", "system", "study", "task"),
        "fields": page_forms.with_errors(page_forms.bound(fields, data), errors),
        "form_error": errors.get("form", ""),
        "round_systems": page_forms.round_systems(),
    }
    return render(request, "annotation/batch_list.html", context, status=400 if errors else 200)


@researcher_required
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(AnnotationBatch.objects.select_related("round", "system"), pk=pk)
    task = selectors.task_for(batch)
    return render(
        request,
        "annotation/batch_detail.html",
        {
            "batch": batch,
            "task": task,
            "links": _crowd_links(request, task) if task is not None else {},
            "progress": selectors.batch_progress(batch),
            "gold": selectors.gold_accuracy(batch),
            "is_admin": is_admin(request.user),
        },
    )


@researcher_required
def game_tasks(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else None
    fields = page_forms.game_task_fields()
    errors: dict[str, str] = {}
    if data is not None:
        form = GameTaskSerializer(data=data)
        if form.is_valid():
            try:
                task = create_validated_game_task(form.validated_data)
            except InputError as error:
                errors = page_forms.input_error(error, fields)
            else:
                return redirect("annotation:game-task", pk=task.pk)
        else:
            errors = page_forms.flat_errors(form.errors)
    context = {
        "tasks": CrowdTask.objects.filter(round__isnull=False).select_related("round__study"),
        "fields": page_forms.with_errors(page_forms.bound(fields, data), errors),
        "form_error": errors.get("form", ""),
    }
    return render(request, "annotation/game_tasks.html", context, status=400 if errors else 200)


@researcher_required
def game_task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(
        CrowdTask.objects.select_related("round__study", "quiz"), pk=pk, round__isnull=False
    )
    return render(
        request,
        "annotation/game_task_detail.html",
        {"task": task, "study": task.round.study, "links": _crowd_links(request, task)},
    )
