"""Where a logged-in person starts: researchers at their studies, experts at their audit queues."""
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from evalsite.studies.selectors import user_is_researcher


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user_is_researcher(user) and user.groups.filter(name=settings.EXPERTS_GROUP).exists():
        return redirect("audits:home")
    return redirect("studies:list")
