"""``{{ amount|money:currency }}``: an amount with its currency, e.g. ``0.06 GBP``."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def money(amount: object, currency: str | None) -> str:
    """Two decimals and the ISO code; amounts of a task without a currency say so."""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return str(amount)
    return f"{value} {currency or '(no currency)'}"
