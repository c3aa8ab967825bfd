"""Routes of the results API, included under /api/v1/ by evalsite.api_urls."""
from django.urls import path

from evalsite.results import api

urlpatterns = [
    path("studies/<slug:slug>/results/", api.ResultsView.as_view(), name="api-study-results"),
    path("studies/<slug:slug>/results/<slug:what>.csv", api.ExportView.as_view(), name="api-study-export"),
]
