"""The results page and its CSV files, mounted under /studies/<slug>/results/ by evalsite.urls."""
from django.urls import path

from evalsite.results import views

app_name = "results"

urlpatterns = [
    path("", views.results_page, name="page"),
    path("<slug:what>.csv", views.export_csv, name="export"),
]
