from django.contrib import admin

from models_serving.models import Endpoint


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ("model", "base_url", "system", "concurrency", "api_key_env", "updated_at")
    list_filter = ("system__study",)
    search_fields = ("model", "base_url", "system__name", "system__study__slug")
    list_select_related = ("system__study",)
