"""The researcher's side of audits, under /studies/<slug>/audits/: the audit plan, its progress, the experts'
link. Researchers only; the form validates, raters.audits.services saves and selects, selectors read."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from evalsite.studies.decorators import researcher_required
from evalsite.studies.forms import add_service_error
from evalsite.studies.models import Study
from raters import links
from raters.audits import selectors, services
from raters.audits.forms import AuditPlanForm
from raters.audits.models import AuditPlan


def _plan_message(result: services.PlanResult) -> str:
    verb = "created" if result.created else "saved"
    parts = [f"Audit plan {verb}: {result.selected} response{'s' if result.selected != 1 else ''} selected"]
    if result.added and not result.created:
        parts.append(f"{result.added} added")
    if result.removed:
        parts.append(f"{result.removed} no longer selected")
    if result.kept:
        parts.append(f"{result.kept} kept although the new selection leaves them out, because experts have "
                     "already opened them")
    return ", ".join(parts) + "."


@require_http_methods(["GET", "POST"])
@researcher_required
def audit_plan(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    plan = selectors.plan_for_study(study=study)
    initial = None if plan is not None else {"audits_per_response": 2, "lease_ttl_seconds": 3600, "is_open": True}
    form = AuditPlanForm(request.POST if request.method == "POST" else None, instance=plan, initial=initial,
                         study=study)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = services.audit_plan_save(
                study=study, selection=data["selection"], audits_per_response=data["audits_per_response"],
                sample_size=data.get("sample_size"), sample_seed=data.get("sample_seed"),
                decided_min_judgments=data.get("decided_min_judgments"),
                lease_ttl_seconds=data["lease_ttl_seconds"], instructions=data.get("instructions", ""),
                is_open=data.get("is_open", False), user=request.user)
        except services.AuditPlanError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _plan_message(result))
            return redirect("audit_admin:plan", slug=study.slug)
    context = {
        "study": study,
        "plan": plan,
        "form": form,
        "selections": AuditPlan.Selection,
        "progress": selectors.plan_progress(plan=plan) if plan is not None else [],
        "experts": selectors.plan_experts(plan=plan) if plan is not None else [],
        "audit_url": links.audit_link(study, settings.PUBLIC_BASE_URL) if plan is not None else "",
        "experts_in_group": Group.objects.filter(name=settings.EXPERTS_GROUP, user__is_active=True).count(),
        "decided_now": services.decided_comparisons(
            study=study, min_judgments=(plan.decided_min_judgments if plan and plan.decided_min_judgments
                                        else study.judgments_per_comparison)).count(),
    }
    return render(request, "raters/audit/researcher/plan.html", context)
