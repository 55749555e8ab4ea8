"""Role checks for templates: ``{% load roles %}{% if user|is_admin %}…``."""

from __future__ import annotations

from django import template

from games import roles

register = template.Library()


@register.filter
def is_admin(user) -> bool:
    """Whether the user may see the admins' pages (payments, exports)."""
    return roles.is_admin(user)
