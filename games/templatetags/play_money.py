"""Amounts of pay with their currency (``settings.PLAY_CURRENCY_SYMBOL``), for play pages.

Every amount a worker or researcher reads carries the currency: ``{{ amount|money }}`` gives
``$0.81``; ``{% currency_symbol %}`` is the symbol alone (for scripts that format amounts).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def currency_symbol() -> str:
    return settings.PLAY_CURRENCY_SYMBOL


@register.filter
def money(amount) -> str:
    """An amount as ``$0.81`` (two decimals, the currency first); '' for no amount."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return str(amount)
    return f"{settings.PLAY_CURRENCY_SYMBOL}{value}"
