"""REST API v1: token auth, OpenAPI schema. Each app contributes its own routes."""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("evalsite.studies.api.urls")),
    path("", include("evalsite.results.api_urls")),
]
