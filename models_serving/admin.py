from django.contrib import admin

from models_serving.models import Endpoint, GenerationChunk, GenerationFailure, GenerationJob


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ("model", "backend", "base_url", "system", "concurrency", "api_key_env", "updated_at")
    list_filter = ("backend", "system__study")
    search_fields = ("model", "base_url", "system__name", "system__study__slug")
    list_select_related = ("system__study",)


class GenerationFailureInline(admin.TabularInline):
    model = GenerationFailure
    fields = ("prompt", "status_code", "attempts", "message")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ("pk", "system", "status", "model", "total", "succeeded", "failed", "created_at", "finished_at")
    list_filter = ("status", "backend", "system__study")
    search_fields = ("model", "base_url", "system__name", "system__study__slug")
    list_select_related = ("system__study",)
    readonly_fields = ("system", "backend", "base_url", "model", "api_key_env", "concurrency", "sampling_params",
                       "chunk_size", "total", "succeeded", "failed", "retry_of", "created_by", "created_at",
                       "started_at", "heartbeat_at", "finished_at")
    inlines = [GenerationFailureInline]


@admin.register(GenerationChunk)
class GenerationChunkAdmin(admin.ModelAdmin):
    list_display = ("job", "index", "status", "claimed_by", "heartbeat_at", "attempts", "finished_at")
    list_filter = ("status",)
    readonly_fields = ("job", "index", "prompt_ids", "claimed_by", "heartbeat_at", "attempts", "finished_at")
