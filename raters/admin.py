"""Django admin for raters, assignments and judgments: for looking, not editing.

Counters, flags and statuses are kept consistent by raters.services (a judgment's `excluded` moves a
comparison's load, a block releases a lease), so the admin never writes them directly: rows are read-only,
nothing is added or deleted here, and blocking goes through the same service as the researcher pages.
"""
from django.contrib import admin, messages

from raters import services
from raters.models import Assignment, Judgment, Rater


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows kept in step by services (counters, leases): shown, never edited here. Raters' and audits' admins."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting would cascade to judgments (or findings), which are kept even when excluded.
        return False


@admin.register(Rater)
class RaterAdmin(ReadOnlyAdmin):
    list_display = ("pseudonym", "study", "provider", "external_id", "status", "judgments_count", "gold_correct",
                    "gold_answered", "first_seen_at", "last_seen_at")
    list_filter = ("study", "provider", "status")
    search_fields = ("pseudonym", "external_id")
    list_select_related = ("study",)
    # The session token is the rater's credential for their pages; staff have no need to see it.
    exclude = ("token",)
    actions = ["block_raters", "unblock_raters"]

    def has_change_permission(self, request, obj=None) -> bool:
        # The actions below need change permission on the list; the form itself stays read-only.
        return obj is None and request.user.has_perm("raters.change_rater")

    @admin.action(description="Block selected raters (judgments kept, excluded)", permissions=["change"])
    def block_raters(self, request, queryset):
        # Only active raters: blocking a screened-out one would let a later unblock revive them.
        active = list(queryset.filter(status=Rater.Status.ACTIVE))
        for rater in active:
            services.rater_block(rater=rater, reason="blocked from the admin")
        self.message_user(request, f"{len(active)} active rater(s) blocked.", messages.SUCCESS)

    @admin.action(description="Unblock selected raters", permissions=["change"])
    def unblock_raters(self, request, queryset):
        for rater in queryset.filter(status=Rater.Status.BLOCKED):
            services.rater_unblock(rater=rater)
        self.message_user(request, "Blocked raters among the selection are active again.", messages.SUCCESS)


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ("pk", "rater", "comparison", "status", "is_gold", "left_is_a", "leased_at", "expires_at",
                    "closed_at")
    list_filter = ("status", "is_gold", "rater__study")
    search_fields = ("rater__pseudonym", "rater__external_id")
    list_select_related = ("rater", "comparison__prompt")
    raw_id_fields = ("rater", "comparison")
    date_hierarchy = "leased_at"


@admin.register(Judgment)
class JudgmentAdmin(ReadOnlyAdmin):
    list_display = ("pk", "rater", "comparison", "choice", "winner", "strength", "is_gold", "gold_passed",
                    "too_fast", "excluded", "server_seconds", "active_seconds", "created_at")
    list_filter = ("excluded", "too_fast", "is_gold", "choice", "comparison__study")
    search_fields = ("rater__pseudonym", "rater__external_id", "reason", "excluded_reason")
    list_select_related = ("rater", "comparison__prompt")
    raw_id_fields = ("assignment", "rater", "comparison", "winner_response")
    date_hierarchy = "created_at"
