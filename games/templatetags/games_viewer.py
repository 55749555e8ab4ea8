"""Small display filters for the game viewer."""

from __future__ import annotations

from django import template

from games.tangrams import tangram_image_url

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """``0.4567`` → ``45.7%``; no value (nothing to divide by) → an em dash."""
    if value is None:
        return "—"
    return f"{100 * value:.{int(digits)}f}%"


@register.filter
def number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:.{int(digits)}f}"


@register.filter
def short_hash(value: str | None) -> str:
    """The first 12 hex digits of a worker hash (enough to tell workers apart on a page)."""
    return value[:12] if value else ""


@register.simple_tag
def tangram_src(name: str) -> str:
    return tangram_image_url(name)
