"""Generation pages, mounted under /studies/<slug>/generation/ by evalsite.urls."""
from django.urls import path

from models_serving import views

app_name = "generation"

urlpatterns = [
    path("", views.generation_overview, name="overview"),
    path("systems/<int:system_pk>/endpoint/", views.endpoint_edit, name="endpoint_edit"),
    path("systems/<int:system_pk>/endpoint/delete/", views.endpoint_delete, name="endpoint_delete"),
    path("systems/<int:system_pk>/endpoint/check/", views.endpoint_check, name="endpoint_check"),
    path("systems/<int:system_pk>/start/", views.generation_start, name="start"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<int:pk>/retry-failed/", views.job_retry_failed, name="job_retry_failed"),
    path("jobs/<int:pk>/resume/", views.job_resume, name="job_resume"),
]
