"""The site's URL map: researcher pages, the REST API, admin, health check."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from evalsite import health, home

urlpatterns = [
    path("", home.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("studies/", include("evalsite.studies.urls")),
    path("r/", include("raters.urls")),
    path("studies/<slug:slug>/raters/", include("raters.researcher_urls")),
    path("studies/<slug:slug>/audits/", include("raters.audits.researcher_urls")),
    path("audit/", include("raters.audits.urls")),
    path("studies/<slug:slug>/generation/", include("models_serving.urls")),
    path("studies/<slug:slug>/results/", include("evalsite.results.urls")),
    path("api/v1/", include("evalsite.api_urls")),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
]
