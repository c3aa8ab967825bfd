"""Researcher pages under /studies/. Fixed paths come before the <slug> ones so a slug cannot shadow them."""
from django.urls import path

from evalsite.studies import views

app_name = "studies"

urlpatterns = [
    path("", views.study_list, name="list"),
    path("new/", views.study_create, name="create"),
    path("account/token/", views.api_token, name="api_token"),
    path("account/token/regenerate/", views.api_token_regenerate, name="api_token_regenerate"),
    path("<slug:slug>/", views.study_detail, name="detail"),
    path("<slug:slug>/edit/", views.study_edit, name="edit"),
    path("<slug:slug>/status/", views.study_set_status, name="set_status"),
    path("<slug:slug>/systems/add/", views.system_add, name="system_add"),
    path("<slug:slug>/systems/<int:pk>/edit/", views.system_edit, name="system_edit"),
    path("<slug:slug>/systems/<int:pk>/delete/", views.system_delete, name="system_delete"),
    path("<slug:slug>/import/prompts/", views.study_import, {"kind": "prompts"}, name="import_prompts"),
    path("<slug:slug>/import/responses/", views.study_import, {"kind": "responses"}, name="import_responses"),
    path("<slug:slug>/comparisons/", views.comparison_list, name="comparisons"),
    path("<slug:slug>/comparisons/build/", views.comparisons_build, name="comparisons_build"),
    path("<slug:slug>/comparisons/<int:pk>/gold/", views.comparison_gold, name="comparison_gold"),
    path("<slug:slug>/prompts/", views.prompt_list, name="prompts"),
]
