"""Small template helpers for the researcher pages. Their output is plain text; autoescaping applies."""
from __future__ import annotations

import json

from django import template

register = template.Library()


@register.filter
def as_json(value) -> str:
    """A compact JSON rendering of metadata, e.g. {"params_b": 13}; empty for an empty object."""
    if value in (None, {}, []):
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


@register.filter
def subtract(value, arg) -> int:
    """value - arg, for counts such as "and N more" (Django's `add` has no subtraction)."""
    return int(value) - int(arg)
