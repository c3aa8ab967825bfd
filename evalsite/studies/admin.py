from django.contrib import admin

from evalsite.studies.models import Comparison, ImportBatch, Prompt, Response, Study, System


class SystemInline(admin.TabularInline):
    model = System
    extra = 0
    fields = ("name", "role", "metadata")


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "status", "scale", "pairing", "judgments_per_comparison", "created_at")
    list_filter = ("status", "scale", "pairing", "reason_mode")
    search_fields = ("slug", "title", "instructions")
    prepopulated_fields = {"slug": ("title",)}
    readonly_fields = ("created_at", "updated_at", "created_by")
    inlines = [SystemInline]


@admin.register(System)
class SystemAdmin(admin.ModelAdmin):
    list_display = ("name", "role", "study", "created_at")
    list_filter = ("role", "study")
    search_fields = ("name", "study__slug", "study__title")
    list_select_related = ("study",)


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("external_id", "study", "category", "short_text", "position")
    list_filter = ("study", "category")
    search_fields = ("external_id", "text", "category")
    list_select_related = ("study",)
    raw_id_fields = ("import_batch",)

    @admin.display(description="text")
    def short_text(self, obj: Prompt) -> str:
        text = obj.preview
        return text[:80] + ("…" if len(text) > 80 else "")


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ("prompt", "system", "source", "model_name", "finish_reason", "updated_at")
    list_filter = ("source", "system__study", "system__role", "finish_reason")
    search_fields = ("prompt__external_id", "system__name", "text", "model_name")
    list_select_related = ("prompt", "system")
    raw_id_fields = ("prompt", "system", "import_batch")


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ("pk", "study", "prompt", "response_a", "response_b", "is_gold", "gold_expected", "judgments_done")
    list_filter = ("study", "is_gold")
    search_fields = ("prompt__external_id", "response_a__system__name", "response_b__system__name")
    list_select_related = ("study", "prompt", "response_a__system", "response_a__prompt",
                           "response_b__system", "response_b__prompt")
    raw_id_fields = ("prompt", "response_a", "response_b")
    readonly_fields = ("judgments_done",)


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = ("pk", "study", "kind", "filename", "rows", "created", "updated", "replace", "source",
                    "imported_by", "imported_at")
    list_filter = ("kind", "source", "replace", "study")
    search_fields = ("filename", "sha256", "study__slug")
    readonly_fields = [f.name for f in ImportBatch._meta.fields]
