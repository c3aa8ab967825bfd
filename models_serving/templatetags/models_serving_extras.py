from django import template

from models_serving.selectors import format_duration

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """Seconds as '3 min 20 s'; '' when unknown."""
    return format_duration(seconds)
