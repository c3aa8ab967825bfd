"""The expert's pages under /audit/: their queues, and the blind audit of one response at a time.

Access: logged-in users in the `experts` group (settings.EXPERTS_GROUP); anyone else logged in gets 403,
anonymous visitors the login page. A study's queue is reached only through its audit plan's opaque key
(never the slug, which often names the systems), and an audit only by its expert.

Blinding: these pages show the study's public title, the experts' instructions, the prompt and one response,
and the expert's own findings - no system name, id, slug or metadata, in the HTML, URLs or headers.

Headers: the rater pages' Content-Security-Policy (raters.csp: no inline script, nothing from other hosts),
except that these pages cannot be framed at all and forms post only to this site. Experts have a session
cookie, so unlike the rater pages these are CSRF-protected: a token in every form and, for htmx, in the
`hx-headers` of <body>.
"""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from evalsite.studies.htmx import wants_partial
from evalsite.studies.rendering import render_markdown
from raters.audits import selectors, services
from raters.audits.models import Audit, AuditFinding, AuditPlan
from raters.csp import CONTENT_SECURITY_POLICY, RATER_HEADERS


def _expert_policy() -> str:
    directives = []
    for directive in CONTENT_SECURITY_POLICY.split("; "):
        name = directive.split(" ", 1)[0]
        if name == "frame-ancestors":
            directive = "frame-ancestors 'none'"  # no crowd provider frames these pages
        elif name == "form-action":
            directive = "form-action 'self'"
        directives.append(directive)
    return "; ".join(directives)


EXPERT_HEADERS = {**RATER_HEADERS, "Content-Security-Policy": _expert_policy()}


def expert_page(view):
    """The headers above on every response of the view (errors and redirects included)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        for name, value in EXPERT_HEADERS.items():
            response.headers[name] = value
        patch_vary_headers(response, ("HX-Request",))
        return response

    return wrapped


def _message(request: HttpRequest, heading: str, text: str, *, status: int = 200, plan: AuditPlan | None = None):
    return render(request, "raters/audit/message.html", {"heading": heading, "text": text, "plan": plan},
                  status=status)


def expert_required(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not selectors.user_is_expert(request.user):
            return _message(request, "Experts only",
                            "These pages are for the experts auditing responses. Ask the researcher to add your "
                            "account to the experts group.", status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _not_found(request: HttpRequest) -> HttpResponse:
    return _message(request, "This link does not work", "We could not find an audit queue at this address. "
                    "Please check that you opened or copied the whole link.", status=404)


def _see_other(url: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(url, status=303)



VERDICT_KEYS = {
    Audit.Verdict.NO_ERRORS: "1",
    Audit.Verdict.MINOR: "2",
    Audit.Verdict.MAJOR: "3",
    Audit.Verdict.NOT_CHECKABLE: "4",
}
VERDICT_HELP = {
    Audit.Verdict.NO_ERRORS: "You checked its claims and found nothing wrong.",
    Audit.Verdict.MINOR: "Flagged errors that do not change the answer's usefulness.",
    Audit.Verdict.MAJOR: "An error that would mislead a reader who relied on it.",
    Audit.Verdict.NOT_CHECKABLE: "No factual claims, or outside what you can verify.",
}


def _verdicts(view: selectors.AuditView | None, kept_verdict: str = "") -> list[dict]:
    severities = view.severities if view is not None else []
    rows = []
    for value, label in Audit.Verdict.choices:
        problem = services.verdict_problem(value, severities)
        rows.append({"value": value, "label": label, "key": VERDICT_KEYS[value], "help": VERDICT_HELP[value],
                     "disabled": bool(problem), "problem": problem, "checked": kept_verdict == value and not problem})
    return rows


def _audit_page(request: HttpRequest, plan: AuditPlan, claim: services.AuditClaim, *, error: str = "",
                error_in: str = "", kept: dict | None = None, status: int = 200) -> HttpResponse:
    audit = claim.audit
    view = selectors.audit_view(audit) if audit is not None else None
    kept = kept or {}
    context = {
        "plan": plan,
        "study_title": plan.study.public_title,
        "instructions_html": render_markdown(plan.instructions),
        "audit": audit,
        "view": view,
        "end_text": services.END_REASONS.get(claim.reason, "") if audit is None else "",
        "progress": selectors.expert_progress(plan=plan, expert=request.user),
        "verdicts": _verdicts(view, kept.get("verdict", "")),
        "severities": AuditFinding.Severity.choices,
        "kept": kept,
        "error": error,
        "error_in": error_in,
        "queue_url": reverse("audits:queue", args=[plan.key]),
    }
    if audit is not None:
        context["finding_url"] = reverse("audits:finding_add", args=[plan.key, audit.pk])
        context["submit_url"] = reverse("audits:submit", args=[plan.key, audit.pk])
    template = "raters/audit/_audit.html" if wants_partial(request) else "raters/audit/audit.html"
    return render(request, template, context, status=status)


def _plan_or_none(key: str) -> AuditPlan | None:
    return selectors.plan_by_key(key)


def _int_or_none(value: str | None) -> int | None:
    try:
        number = int(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is None or 0 <= number < 2**31 else None


# --- pages ----------------------------------------------------------------------------------------------------

@expert_page
@require_GET
@expert_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "raters/audit/home.html", {"queues": selectors.expert_queues(expert=request.user)})


@expert_page
@require_GET
@expert_required
def queue(request: HttpRequest, key: str) -> HttpResponse:
    plan = _plan_or_none(key)
    if plan is None:
        return _not_found(request)
    return _audit_page(request, plan, services.audit_claim(plan=plan, expert=request.user))


def _after_refusal(request: HttpRequest, plan: AuditPlan, audit_id: int, exc: services.AuditError, error_in: str,
                   kept: dict) -> HttpResponse:
    """Show what the expert has to work on now: the same audit with their input kept, or, if that one is no
    longer theirs to change, the one they hold now, with the message."""
    claim = services.audit_claim(plan=plan, expert=request.user)
    same = claim.audit is not None and claim.audit.pk == audit_id
    return _audit_page(request, plan, claim, error=str(exc), error_in=error_in if same else "",
                       kept=kept if same else None, status=422)


@expert_page
@require_POST
@expert_required
def finding_add(request: HttpRequest, key: str, audit_id: int) -> HttpResponse:
    plan = _plan_or_none(key)
    if plan is None:
        return _not_found(request)
    posted = {name: request.POST.get(name, "") for name in
              ("start", "end", "quote", "severity", "note", "correction", "source_url")}
    try:
        services.finding_add(
            plan=plan, expert=request.user, audit_id=audit_id, severity=posted["severity"], note=posted["note"],
            correction=posted["correction"], quote=posted["quote"], start=_int_or_none(posted["start"]),
            end=_int_or_none(posted["end"]), source_url=posted["source_url"])
    except services.NotFound:
        return _not_found(request)
    except services.AuditError as exc:
        return _after_refusal(request, plan, audit_id, exc, "finding", posted)
    return _back_to_findings(request, plan)


def _back_to_findings(request: HttpRequest, plan) -> HttpResponse:
    """After a finding is added or removed: the same audit again, findings in view."""
    if not request.htmx:
        return _see_other(reverse("audits:queue", args=[plan.key]) + "#findings")
    return _audit_page(request, plan, services.audit_claim(plan=plan, expert=request.user))


@expert_page
@require_POST
@expert_required
def finding_delete(request: HttpRequest, key: str, audit_id: int, finding_id: int) -> HttpResponse:
    plan = _plan_or_none(key)
    if plan is None:
        return _not_found(request)
    try:
        services.finding_delete(plan=plan, expert=request.user, audit_id=audit_id, finding_id=finding_id)
    except services.NotFound:
        return _not_found(request)
    except services.AuditError as exc:
        return _after_refusal(request, plan, audit_id, exc, "finding", {})
    return _back_to_findings(request, plan)


@expert_page
@require_POST
@expert_required
def submit(request: HttpRequest, key: str, audit_id: int) -> HttpResponse:
    plan = _plan_or_none(key)
    if plan is None:
        return _not_found(request)
    posted = {"verdict": request.POST.get("verdict", ""), "comment": request.POST.get("comment", "")}
    answer = {"plan": plan, "expert": request.user, "audit_id": audit_id, **posted}
    try:
        if request.htmx:  # the next response goes back in this answer: lease it in the same transaction
            _, claim = services.audit_submit_and_claim(**answer)
        else:
            services.audit_submit(**answer)
    except services.NotFound:
        return _not_found(request)
    except services.AuditError as exc:
        return _after_refusal(request, plan, audit_id, exc, "verdict", posted)
    if not request.htmx:
        return _see_other(reverse("audits:queue", args=[plan.key]))
    return _audit_page(request, plan, claim)
