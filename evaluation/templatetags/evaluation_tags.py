from __future__ import annotations

from django import template

from evaluation import tables

register = template.Library()


@register.filter
def pct(value) -> str:
    """A fraction as a percentage with one decimal ('–' when missing)."""
    return tables.fmt(value, percent=True)


@register.filter
def num(value, digits: int = 2) -> str:
    return tables.fmt(value, percent=False, digits=int(digits))


@register.filter
def ci_pct(estimate) -> str:
    return tables.fmt_ci(estimate, percent=True)


@register.filter
def ci_num(estimate) -> str:
    return tables.fmt_ci(estimate, percent=False)


@register.filter
def cell(matrix, index):
    """matrix|cell:"i,j" → matrix[i][j]."""
    i, j = (int(part) for part in str(index).split(","))
    return matrix[i][j]


@register.filter
def get(mapping, key):
    return (mapping or {}).get(key)


@register.simple_tag
def confusion_value(panel, normalize: str, i: int, j: int) -> str:
    if normalize == "counts":
        value = panel["confusion"][i][j]
        return tables.fmt(value, percent=False, digits=0 if float(value).is_integer() else 2)
    return tables.fmt(panel["normalized"][normalize][i][j], percent=True)
