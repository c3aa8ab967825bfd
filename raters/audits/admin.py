"""Django admin for audits: for looking, not editing. Counters (a target's load and audits done) are kept in
step with the audits by raters.audits.services, so rows are read-only here and the plan is edited on the
study's audit page, which applies its selection."""
from django.contrib import admin

from raters.admin import ReadOnlyAdmin
from raters.audits.models import Audit, AuditFinding, AuditPlan, AuditTarget


@admin.register(AuditPlan)
class AuditPlanAdmin(ReadOnlyAdmin):
    list_display = ("study", "selection", "sample_size", "audits_per_response", "is_open", "selected_at")
    list_select_related = ("study",)


@admin.register(AuditTarget)
class AuditTargetAdmin(ReadOnlyAdmin):
    list_display = ("pk", "plan", "response", "selected_by", "load", "audits_done")
    list_filter = ("plan__study",)
    list_select_related = ("plan__study", "response__system", "response__prompt")
    raw_id_fields = ("plan", "response")


class FindingInline(admin.TabularInline):
    model = AuditFinding
    extra = 0
    can_delete = False
    fields = ("start", "end", "quote", "severity", "note", "correction", "source_url")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Audit)
class AuditAdmin(ReadOnlyAdmin):
    list_display = ("pk", "plan", "expert", "status", "verdict", "leased_at", "submitted_at")
    list_filter = ("status", "verdict", "plan__study")
    search_fields = ("expert__username",)
    list_select_related = ("plan__study", "expert")
    raw_id_fields = ("plan", "target", "expert")
    inlines = [FindingInline]
