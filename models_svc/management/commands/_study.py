"""Helpers shared by the model-service commands."""

from __future__ import annotations

from django.core.management.base import CommandError

from games.models import Study


def study_named(name: str) -> Study:
    try:
        return Study.objects.get(name=name)
    except Study.DoesNotExist as exc:
        raise CommandError(f"no study named {name!r}") from exc


def settings_from(items: list[str]) -> dict[str, str]:
    """``--set NAME=VALUE`` options as a dict (values are checked by the training config)."""
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise CommandError(f"--set {item!r}: write NAME=VALUE")
        values[name.strip()] = value.strip()
    return values
