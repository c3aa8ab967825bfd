"""Access rules for the researcher pages."""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from evalsite.studies.selectors import user_is_researcher


def researcher_required(view):
    """Researchers (group `researchers`) and staff only.

    Anonymous visitors are sent to the login page (they may be a researcher who is not logged in yet); a
    logged-in user without the right gets 403 rather than a login loop, since logging in again cannot help.
    The check runs before the view looks anything up, so a 403 never reveals whether a study exists.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not user_is_researcher(request.user):
            raise PermissionDenied("Only researchers (group 'researchers' or staff) may open the study pages.")
        return view(request, *args, **kwargs)

    return wrapper
