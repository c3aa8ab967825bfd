"""Expert-facing addresses, mounted under /audit/. A study's queue is named only by its audit plan's opaque
key, an audit by its number (which says nothing about the system: audits are numbered in the order experts
open them, and responses come breadth-first in a random order)."""
from django.urls import path

from raters.audits import views

app_name = "audits"

urlpatterns = [
    path("", views.home, name="home"),
    path("<str:key>/", views.queue, name="queue"),
    path("<str:key>/<int:audit_id>/findings/", views.finding_add, name="finding_add"),
    path("<str:key>/<int:audit_id>/findings/<int:finding_id>/delete/", views.finding_delete, name="finding_delete"),
    path("<str:key>/<int:audit_id>/submit/", views.submit, name="submit"),
]
