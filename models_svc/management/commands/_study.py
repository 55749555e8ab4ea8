"""Helpers shared by the model-service commands."""

from __future__ import annotations

from django.core.management.base import CommandError

from games.models import Study


def study_named(name: str) -> Study:
    try:
        return Study.objects.get(name=name)
    except Study.DoesNotExist as exc:
        raise CommandError(f"no study named {name!r}") from exc
