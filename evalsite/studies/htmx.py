"""One view, two renderings: the full page, or the named partial when htmx asks for it.

Used by every app's pages (evalsite.studies sits below them all, so each may import this).
"""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def wants_partial(request: HttpRequest) -> bool:
    # htmx restoring a page from history (back button after hx-push-url) needs the whole page.
    return bool(getattr(request, "htmx", False)) and not request.htmx.history_restore_request


def render_page_or_partial(request: HttpRequest, page: str, partial: str, context: dict,
                           status: int = 200) -> HttpResponse:
    """Caches must keep the two renderings apart, hence Vary: HX-Request."""
    response = render(request, partial if wants_partial(request) else page, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response
