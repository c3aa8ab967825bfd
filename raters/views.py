"""Every page a crowd rater touches: entry links, instructions and consent, the rating loop, the end page.

Blinding: these pages receive a study only through its opaque `rater_key` and a rater only through their
`token`; they show the public title, the instructions, the prompt and the two response texts, and nothing
else about the study (no slug, title, system names, ids or metadata - in the HTML, the URLs or the headers).

Sessions and CSRF: raters have no account and no cookie. MTurk shows these pages in a third-party iframe,
where browsers often drop cookies, so the rater's session is the unguessable token in the URL
(`/r/t/<token>/...`). The same token is the CSRF proof: a cross-site attacker cannot forge a POST to a URL
it cannot know, and there is no ambient credential (cookie) for it to ride on. So the rater views are
csrf_exempt and the pages set no cookie at all.

Every response goes through `rater_page`, which adds the Content-Security-Policy (no inline script, nothing
from other hosts) and lets MTurk frame the page.
"""
from __future__ import annotations

import math
from functools import wraps
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from evalsite.studies.htmx import wants_partial
from evalsite.studies.models import Study
from evalsite.studies.rendering import render_markdown
from raters import selectors
from raters.csp import MTURK_ORIGINS, rater_page
from raters.models import Assignment, Judgment, Rater
from raters.services import (
    RatingError,
    assignment_claim,
    judgment_submit,
    judgment_submit_and_claim,
    rater_consent,
    rater_enter,
)

PROLIFIC_PARAMS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")
MTURK_PARAMS = ("workerId", "assignmentId", "hitId", "turkSubmitTo")
MTURK_PREVIEW_ASSIGNMENT = "ASSIGNMENT_ID_NOT_AVAILABLE"
PROLIFIC_COMPLETE_URL = "https://app.prolific.com/submissions/complete"

NOT_LIVE_PAGES = {
    Study.Status.DRAFT: ("This study has not started yet",
                         "It is not accepting answers yet. Please come back later."),
    Study.Status.PAUSED: ("This study is paused",
                          "It is not accepting answers at the moment. Please try again a little later."),
    Study.Status.CLOSED: ("This study has closed",
                          "It is no longer accepting answers. Thank you for your interest."),
}


def _see_other(url: str) -> HttpResponseRedirect:
    # 303: after a POST the browser follows with a GET, so a reload never re-submits.
    return HttpResponseRedirect(url, status=303)


def _message(request: HttpRequest, heading: str, text: str, *, status: int = 200,
             study: Study | None = None, hint: str = "") -> HttpResponse:
    return render(request, "raters/message.html",
                  {"heading": heading, "text": text, "hint": hint, "study": study}, status=status)


def _not_found(request: HttpRequest) -> HttpResponse:
    return _message(request, "This link does not work",
                    "We could not find a study or a session at this address.",
                    hint="Please check that you opened or copied the whole link.", status=404)


def _bad_link(request: HttpRequest, study: Study, text: str, hint: str = "") -> HttpResponse:
    return _message(request, "This link is incomplete", text, hint=hint, study=study, status=400)


def _not_live(request: HttpRequest, study: Study) -> HttpResponse:
    heading, text = NOT_LIVE_PAGES.get(study.status, NOT_LIVE_PAGES[Study.Status.CLOSED])
    return _message(request, heading, text, study=study)


def _missing_params(request: HttpRequest, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if not request.GET.get(name, "").strip()]


def _has_control_characters(values) -> bool:
    # PostgreSQL refuses NUL in text and JSON; no provider id contains control characters anyway.
    return any(ord(char) < 32 or ord(char) == 127 for value in values for char in value)


def _placeholders_left(values: list[str]) -> bool:
    # The study URL pasted into a browser instead of opened from Prolific still has {{%PROLIFIC_PID%}}.
    return any("{{%" in value or "%}}" in value for value in values)


def _enter(request: HttpRequest, study: Study, provider: str, external_id: str,
           provider_data: dict | None = None) -> HttpResponse:
    if _has_control_characters([external_id, *(provider_data or {}).values()]):
        return _bad_link(request, study, "The link contains characters that are not allowed in it.")
    try:
        rater = rater_enter(study=study, provider=provider, external_id=external_id, provider_data=provider_data)
    except RatingError as exc:
        return _bad_link(request, study, str(exc))
    return _see_other(reverse("raters:welcome", args=[rater.token]))


# --- entry links --------------------------------------------------------------------------------------------

def _live_study(view):
    """Entry views get the study their opaque key names; an unknown key is a 404, a study that is not live
    says so politely and lets nobody in."""

    @wraps(view)
    def wrapped(request: HttpRequest, rater_key: str) -> HttpResponse:
        study = selectors.study_by_rater_key(rater_key)
        if study is None:
            return _not_found(request)
        if not study.is_accepting_ratings:
            return _not_live(request, study)
        return view(request, study)

    return wrapped


def _rater_session(view):
    """Session views get the rater their token names (with the study); an unknown token is a 404."""

    @wraps(view)
    def wrapped(request: HttpRequest, token: str) -> HttpResponse:
        rater = selectors.rater_by_token(token)
        if rater is None:
            return _not_found(request)
        return view(request, rater)

    return wrapped


@csrf_exempt
@rater_page
@require_GET
@_live_study
def entry_prolific(request: HttpRequest, study: Study) -> HttpResponse:
    missing = _missing_params(request, PROLIFIC_PARAMS)
    if missing:
        return _bad_link(request, study, f"The link is missing {', '.join(missing)}.",
                         hint="Please open the study again from Prolific.")
    values = {name: request.GET[name].strip() for name in PROLIFIC_PARAMS}
    if _placeholders_left(list(values.values())):
        return _bad_link(request, study, "The link still contains Prolific's placeholders instead of your ids.",
                         hint="Please open the study from Prolific rather than copying its address.")
    return _enter(request, study, Rater.Provider.PROLIFIC, values["PROLIFIC_PID"],
                  {"STUDY_ID": values["STUDY_ID"], "SESSION_ID": values["SESSION_ID"]})


def _mturk_origin(value: str) -> str | None:
    """turkSubmitTo as one of MTurk's two origins, or None: it is where the end page sends the worker."""
    value = value.strip().rstrip("/")
    return value if value in MTURK_ORIGINS else None


@csrf_exempt
@rater_page
@require_GET
@_live_study
def entry_mturk(request: HttpRequest, study: Study) -> HttpResponse:
    if request.GET.get("assignmentId", "").strip() == MTURK_PREVIEW_ASSIGNMENT:
        # A worker looking at the HIT before accepting it: show what the task is, record nothing.
        return render(request, "raters/preview.html", {
            "study": study,
            "instructions_html": render_markdown(study.instructions),
            "view": selectors.example_comparison_view(),
            "choices": _choices(study),
            "strengths": STRENGTHS,
            "reason_mode": study.reason_mode,
            "preview": True,
        })
    missing = _missing_params(request, MTURK_PARAMS)
    if missing:
        return _bad_link(request, study, f"The link is missing {', '.join(missing)}.",
                         hint="Please open this task from Mechanical Turk.")
    submit_to = _mturk_origin(request.GET["turkSubmitTo"])
    if submit_to is None:
        return _bad_link(request, study, "The link names an address to submit to that is not Mechanical Turk.",
                         hint="Please open this task from Mechanical Turk.")
    return _enter(request, study, Rater.Provider.MTURK, request.GET["workerId"], {
        "assignmentId": request.GET["assignmentId"].strip(),
        "hitId": request.GET["hitId"].strip(),
        "turkSubmitTo": submit_to,
    })


@csrf_exempt
@rater_page
@require_GET
@_live_study
def entry_generic(request: HttpRequest, study: Study) -> HttpResponse:
    code = request.GET.get("code")
    if code is None:
        return render(request, "raters/code_form.html", {"study": study})
    if not code.strip():
        return render(request, "raters/code_form.html",
                      {"study": study, "error": "Please enter the code you were given."}, status=400)
    return _enter(request, study, Rater.Provider.GENERIC, code)


# --- instructions and consent ----------------------------------------------------------------------------

def _welcome_page(request: HttpRequest, rater: Rater, *, error: str = "", status: int = 200) -> HttpResponse:
    study = rater.study
    return render(request, "raters/welcome.html", {
        "rater": rater,
        "study": study,
        "instructions_html": render_markdown(study.instructions),
        "choices": _choices(study),
        "progress_total": selectors.rater_progress(rater).total,
        "error": error,
    }, status=status)


@csrf_exempt
@rater_page
@require_GET
@_rater_session
def welcome(request: HttpRequest, rater: Rater) -> HttpResponse:
    if not rater.is_active or not rater.study.is_accepting_ratings:
        # The end page says what applies: a code for work done, the screened-out code, or the study's state.
        return _see_other(reverse("raters:done", args=[rater.token]))
    return _welcome_page(request, rater)


@csrf_exempt
@rater_page
@require_POST
@_rater_session
def consent(request: HttpRequest, rater: Rater) -> HttpResponse:
    if request.POST.get("consent") != "yes":
        return _welcome_page(request, rater, status=400,
                             error="Please tick the box to confirm you have read the instructions.")
    rater_consent(rater=rater)
    return _see_other(reverse("raters:rate", args=[rater.token]))


# --- the rating loop ---------------------------------------------------------------------------------------

CHOICE_LABELS = [
    (Judgment.Choice.LEFT, "A is better", "1"),
    (Judgment.Choice.RIGHT, "B is better", "2"),
    (Judgment.Choice.TIE, "Tie", "3"),
    (Judgment.Choice.BOTH_BAD, "Both are bad", "4"),
]
STRENGTHS = [(Judgment.Strength.SLIGHTLY, "Slightly better", "S"), (Judgment.Strength.MUCH, "Much better", "M")]


def _choices(study: Study) -> list[dict]:
    return [{"value": value, "label": label, "key": key} for value, label, key in CHOICE_LABELS
            if value != Judgment.Choice.BOTH_BAD or study.allows_both_bad]



def _go(request: HttpRequest, url: str) -> HttpResponse:
    """Send the rater to another page: htmx follows HX-Redirect with a full page load."""
    return HttpResponseClientRedirect(url) if request.htmx else _see_other(url)


def _claim_ended(request: HttpRequest, rater: Rater, reason: str) -> HttpResponse:
    page = "raters:welcome" if reason == "no_consent" else "raters:done"
    return _go(request, reverse(page, args=[rater.token]))


def _rating_page(request: HttpRequest, rater: Rater, assignment: Assignment, *, error: str = "",
                 kept: dict | None = None, status: int = 200) -> HttpResponse:
    study = rater.study
    context = {
        "study": study,
        "rater": rater,
        "assignment_id": assignment.pk,
        "view": selectors.comparison_view(assignment),
        "progress": selectors.rater_progress(rater),
        "choices": _choices(study),
        "strengths": STRENGTHS,
        "reason_mode": study.reason_mode,
        "kept": kept or {},
        "error": error,
        "rate_url": reverse("raters:rate", args=[rater.token]),
    }
    template = "raters/_rating.html" if wants_partial(request) else "raters/rate.html"
    return render(request, template, context, status=status)


def _active_seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


@csrf_exempt
@rater_page
@require_http_methods(["GET", "POST"])
@_rater_session
def rate(request: HttpRequest, rater: Rater) -> HttpResponse:
    if request.method == "POST":
        return _submit(request, rater)
    claim = assignment_claim(rater=rater)
    if claim.done:
        return _claim_ended(request, rater, claim.reason)
    return _rating_page(request, rater, claim.assignment)


def _assignment_id(value: str) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 0 < number < 2**63 else None  # beyond a bigint the database would raise


def _submit(request: HttpRequest, rater: Rater) -> HttpResponse:
    posted = {name: request.POST.get(name, "") for name in ("choice", "strength", "reason")}
    posted["reason"] = posted["reason"].replace("\x00", "")  # PostgreSQL refuses NUL in text
    assignment_id = _assignment_id(request.POST.get("assignment", ""))
    try:
        if assignment_id is None:
            raise RatingError("The form did not say which comparison it was for. Here it is again.")
        answer = {"rater": rater, "assignment_id": assignment_id, "choice": posted["choice"],
                  "strength": posted["strength"], "reason": posted["reason"],
                  "active_seconds": _active_seconds(request.POST.get("active_seconds"))}
        if request.htmx:  # the next comparison goes back in this response: lease it in the same transaction
            _, claim = judgment_submit_and_claim(**answer)
        else:
            judgment_submit(**answer)
    except RatingError as exc:
        # Show what the rater has to answer now: the same comparison with their input kept, or, if that one
        # is gone (lease lapsed and taken, not theirs), the one they hold now.
        claim = assignment_claim(rater=rater)
        if claim.done:
            return _claim_ended(request, rater, claim.reason)
        same = claim.assignment.pk == assignment_id
        return _rating_page(request, rater, claim.assignment, error=str(exc), kept=posted if same else None,
                            status=422)
    # Recorded (or recorded before: a double click, a second tab, a replay). Either way the next comparison.
    if not request.htmx:
        return _see_other(reverse("raters:rate", args=[rater.token]))
    if claim.done:
        return _claim_ended(request, rater, claim.reason)
    return _rating_page(request, rater, claim.assignment)


# --- the end -------------------------------------------------------------------------------------------------

def prolific_completion_url(study: Study, code: str) -> str:
    """Prolific's completion URL with the code as `cc`; a study may set its own (https only)."""
    configured = str((study.provider_settings or {}).get("prolific_completion_url") or "")
    parts = urlsplit(configured)
    if parts.scheme != "https" or not parts.netloc:
        parts = urlsplit(PROLIFIC_COMPLETE_URL)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "cc"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("cc", code)]), fragment=""))


def _end_state(rater: Rater, reason: str) -> dict:
    study = rater.study
    if reason in (Rater.Status.SCREENED_OUT, Rater.Status.BLOCKED):
        return {"outcome": "screened_out", "code": study.screened_out_code,
                "heading": "Thank you for your time",
                "text": "There are no more comparisons for you in this study. Please submit this code."}
    if reason == "not_live" and study.status == Study.Status.PAUSED:
        # A pause is temporary: the rater keeps their place and comes back to the same link, so no code yet.
        return {"outcome": "none", "code": "", "heading": "This study is paused",
                "text": "Your answers so far are saved. Please come back to this page in a little while to "
                        "continue where you left off."}
    if selectors.rater_has_judged(rater):
        finished = reason == "cap_reached" or rater.judgments_count >= selectors.rater_progress(rater).total
        text = ("You have completed all the comparisons. Thank you!" if finished
                else "There are no more comparisons for you right now. Thank you for your answers!")
        return {"outcome": "complete", "code": study.completion_code, "heading": "All done", "text": text}
    if reason == "not_live":
        heading, text = NOT_LIVE_PAGES.get(study.status, NOT_LIVE_PAGES[Study.Status.CLOSED])
        return {"outcome": "none", "code": "", "heading": heading, "text": text}
    return {"outcome": "none", "code": "", "heading": "No comparisons available",
            "text": "There are no more comparisons available for you in this study."}


@csrf_exempt
@rater_page
@require_GET
@_rater_session
def done(request: HttpRequest, rater: Rater) -> HttpResponse:
    # The code is given only at the end: a rater who still has comparisons to do goes back to them.
    claim = assignment_claim(rater=rater)
    if not claim.done:
        return _see_other(reverse("raters:rate", args=[rater.token]))
    if claim.reason == "no_consent":
        return _see_other(reverse("raters:welcome", args=[rater.token]))
    state = _end_state(rater, claim.reason)
    context = {"study": rater.study, "rater": rater, **state}
    if rater.provider == Rater.Provider.PROLIFIC and state["code"]:
        context["prolific_url"] = prolific_completion_url(rater.study, state["code"])
    if rater.provider == Rater.Provider.MTURK:
        submit_to = _mturk_origin(str(rater.provider_data.get("turkSubmitTo", "")))
        if submit_to and state["code"]:
            context["mturk_action"] = f"{submit_to}/mturk/externalSubmit"
            context["mturk_assignment_id"] = rater.provider_data.get("assignmentId", "")
    return render(request, "raters/done.html", context)


@csrf_exempt
@rater_page
def not_found(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Any other address under /r/: the rater's 404, with the rater headers, not the researcher site's."""
    return _not_found(request)
