"""Response headers for every page a crowd rater receives.

Rater pages show model output, which is untrusted input. The sanitizer (evalsite.studies.rendering) is the
first defence; this Content-Security-Policy is the second: even if markup slipped through, the browser would
run no inline script, load nothing from another host and submit forms only to us or to Mechanical Turk.

Mechanical Turk shows an ExternalQuestion page inside an iframe on mturk.com, so these pages cannot send
X-Frame-Options: DENY like the rest of the site; `frame-ancestors` names the hosts allowed to frame them.
"""
from __future__ import annotations

from functools import wraps

from django.utils.cache import patch_vary_headers

MTURK_ORIGINS = ("https://www.mturk.com", "https://workersandbox.mturk.com")

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "font-src 'self'",
    "form-action 'self' " + " ".join(MTURK_ORIGINS),
    "base-uri 'none'",
    "frame-ancestors 'self' " + " ".join(MTURK_ORIGINS),
])

RATER_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The page address holds the rater's session token: never send it to a site the rater follows a link
    # to (the Prolific completion link included).
    "Referrer-Policy": "no-referrer",
    # Shared and back-button caches must not keep a rater's comparison or completion code.
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}


def apply_rater_headers(response):
    for name, value in RATER_HEADERS.items():
        response.headers[name] = value
    # XFrameOptionsMiddleware leaves a response alone when it carries this flag; frame-ancestors rules instead.
    response.xframe_options_exempt = True
    # The same URL answers with a full page or an htmx partial.
    patch_vary_headers(response, ("HX-Request",))
    return response


def rater_page(view):
    """Decorate a rater-facing view: the CSP and the other headers above on every response it returns."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        return apply_rater_headers(view(request, *args, **kwargs))

    return wrapped
