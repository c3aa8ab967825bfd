"""The researcher's rater pages, mounted under /studies/<slug>/raters/ by evalsite.urls."""
from django.urls import path

from raters import researcher_views as views

app_name = "rater_admin"

urlpatterns = [
    path("", views.rater_list, name="list"),
    path("progress/", views.rater_progress, name="progress"),
    path("links/", views.entry_links, name="links"),
    path("<int:pk>/block/", views.rater_block, name="block"),
    path("<int:pk>/unblock/", views.rater_unblock, name="unblock"),
]
