"""The researcher's audit setup, mounted under /studies/<slug>/audits/ by evalsite.urls."""
from django.urls import path

from raters.audits import researcher_views as views

app_name = "audit_admin"

urlpatterns = [
    path("", views.audit_plan, name="plan"),
]
