from rest_framework.permissions import BasePermission

from evalsite.studies.selectors import user_is_researcher


class IsResearcher(BasePermission):
    """Researchers (group `researchers`) and staff; anyone else gets 401 (no credentials) or 403."""

    message = "Only researchers (group 'researchers' or staff) may use this API."

    def has_permission(self, request, view) -> bool:
        return user_is_researcher(request.user)
