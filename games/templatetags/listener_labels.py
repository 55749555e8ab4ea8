"""``{{ system|listener_label }}``: what listens in a system's games (``games.listeners``)."""

from __future__ import annotations

from django import template

from games import listeners

register = template.Library()


@register.filter
def listener_label(system) -> str:
    return listeners.listener_label(system)
