"""Rater-facing addresses. They name a study only by its opaque rater_key and a rater only by their token.

The token routes come first so that no rater_key can shadow them; the catch-all at the end gives any other
address under /r/ the rater's own 404 page (with the rater headers) instead of the researcher site's.
"""
from django.urls import path, re_path

from raters import views

app_name = "raters"

urlpatterns = [
    path("t/<str:token>/", views.welcome, name="welcome"),
    path("t/<str:token>", views.welcome),  # the catch-all below would otherwise beat APPEND_SLASH
    path("t/<str:token>/consent", views.consent, name="consent"),
    path("t/<str:token>/rate", views.rate, name="rate"),
    path("t/<str:token>/done", views.done, name="done"),
    path("<str:rater_key>/prolific", views.entry_prolific, name="entry_prolific"),
    path("<str:rater_key>/mturk", views.entry_mturk, name="entry_mturk"),
    path("<str:rater_key>/go", views.entry_generic, name="entry_generic"),
    re_path(r"^.*$", views.not_found, name="not_found"),
]
