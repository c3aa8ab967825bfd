"""Routes of the studies API, included under /api/v1/.

System names are matched with `path:` because model names often contain a slash (meta-llama/Llama-2-7b).
"""
from django.urls import path

from evalsite.studies.api import views

urlpatterns = [
    path("studies/", views.StudyListView.as_view(), name="api-study-list"),
    path("studies/<slug:slug>/", views.StudyDetailView.as_view(), name="api-study-detail"),
    path("studies/<slug:slug>/status/", views.StudyStatusView.as_view(), name="api-study-status"),
    path("studies/<slug:slug>/coverage/", views.CoverageView.as_view(), name="api-study-coverage"),
    path("studies/<slug:slug>/systems/", views.SystemListView.as_view(), name="api-system-list"),
    path("studies/<slug:slug>/systems/<path:name>/", views.SystemDetailView.as_view(), name="api-system-detail"),
    path("studies/<slug:slug>/prompts/", views.PromptListView.as_view(), name="api-prompt-list"),
    path("studies/<slug:slug>/prompts/import/", views.PromptImportView.as_view(), name="api-prompt-import"),
    path("studies/<slug:slug>/responses/", views.ResponseListView.as_view(), name="api-response-list"),
    path("studies/<slug:slug>/responses/import/", views.ResponseImportView.as_view(), name="api-response-import"),
    path("studies/<slug:slug>/comparisons/", views.ComparisonListView.as_view(), name="api-comparison-list"),
    path("studies/<slug:slug>/comparisons/build/", views.ComparisonBuildView.as_view(),
         name="api-comparison-build"),
]
