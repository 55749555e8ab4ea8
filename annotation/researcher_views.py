"""Researcher pages: annotation batches and game-round tasks (lists, creation, detail).

Both creation forms are validated by the API's serializers and ``annotation.creation``, so the
page and the API accept and refuse exactly the same input; errors are shown next to the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar, cast

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from rest_framework.serializers import Serializer

from games.models import Round
from games.roles import is_admin

from . import page_forms, selectors
from .api.researchers import (
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


T = TypeVar("T")


def _create(
    serializer_class: type[Serializer],
    data: Mapping[str, object],
    fields: Sequence[page_forms.Field],
    create: Callable[[dict], T],
) -> tuple[T | None, dict[str, str]]:
    """Validate a posted form with the API's serializer and create from it: the created object,
    or the errors placed on the inputs they name (``{"form": …}`` for the rest)."""
    form = serializer_class(data=data)
    if not form.is_valid():
        return None, page_forms.flat_errors(form.errors)
    try:
        return create(form.validated_data), {}
    except InputError as error:
        return None, page_forms.input_error(error, fields)


@researcher_required
def batch_list(request: HttpRequest) -> HttpResponse:
    data = request.POST if request.method == "POST" else None
    # The round board links here with the study, round and system to annotate.
    preselected = {k: request.GET[k] for k in ("study", "round", "system") if k in request.GET}
    fields = page_forms.batch_fields(data if data is not None else preselected)
    errors: dict[str, str] = {}
    if data is not None:
        batch, errors = _create(
            BatchCreateSerializer,
            data,
            fields,
            lambda validated: create_validated_batch(validated, request.user),
        )
        if batch is not None:
            return redirect("annotation:batch-detail", pk=batch.pk)
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
        task, errors = _create(GameTaskSerializer, data, fields, create_validated_game_task)
        if task is not None:
            return redirect("annotation:game-task", pk=task.pk)
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
        {
            "task": task,
            # the query admits game round tasks only, which have a round
            "study": cast(Round, task.round).study,
            "links": _crowd_links(request, task),
        },
    )
