"""The researcher's side of rating, under /studies/<slug>/raters/: progress, the raters table, entry links.

Researchers only. Thin views: reads come from raters.progress, writes go through raters.services. Every page
works as plain HTML; with htmx the progress panel refreshes itself, the table sorts and pages in place and a
block or unblock swaps only its row.
"""
from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from evalsite.studies.decorators import researcher_required
from evalsite.studies.htmx import render_page_or_partial, wants_partial
from evalsite.studies.models import Study
from raters import links, progress, services
from raters.models import Rater

RATERS_PER_PAGE = 100
FLAGGED_RESPONSES_SHOWN = 100
MAX_GENERIC_LINKS = 200
# The table's view of the world, carried through a block/unblock so the researcher lands where they were.
TABLE_STATE_KEYS = ("sort", "status", "page")


class BlockForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False, strip=True,
                             widget=forms.TextInput(attrs={"placeholder": "Reason (optional)"}))


def _study_or_404(slug: str) -> Study:
    return get_object_or_404(Study, slug=slug)


# --- progress -------------------------------------------------------------------------------------------

@require_GET
@researcher_required
def rater_progress(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study_or_404(slug)
    context = {"study": study, "progress": progress.study_progress(study=study), "tab": "progress"}
    if not wants_partial(request):
        # Only the full page lists them: they change on import, not while the panel refreshes itself.
        flagged = progress.study_flagged_responses(study=study)
        context.update(flagged=flagged[:FLAGGED_RESPONSES_SHOWN], flagged_total=flagged.count())
    return render_page_or_partial(request, "raters/researcher/progress.html",
                                   "raters/researcher/partials/progress.html", context)


# --- raters table ---------------------------------------------------------------------------------------

def _table_state(data) -> dict[str, str]:
    """The sort, status filter and page of the raters table, from a GET query or a POSTed form; only
    values the table understands are kept."""
    state = {"sort": progress.rater_sort_key(data.get("sort"))}
    if data.get("status") in Rater.Status.values:
        state["status"] = data["status"]
    if str(data.get("page", "")).isdigit():
        state["page"] = str(data["page"])
    return state


def _list_url(study: Study, state: dict[str, str]) -> str:
    return f"{reverse('rater_admin:list', args=[study.slug])}?{urlencode(state)}"


# The table's columns: (sort key or None when it does not sort, heading, numeric, hover help).
RATER_COLUMNS = [
    ("pseudonym", "Rater", False, "A pseudonym; the provider's worker id is in the admin"),
    ("provider", "Provider", False, ""),
    ("judgments", "Judgments", True, "All judgments, gold and excluded ones included"),
    ("gold", "Gold accuracy", True, "Right answers on gold comparisons"),
    (None, "Median s", True, "Median seconds on task: the page's active time where it reported one, "
                             "else lease to submit"),
    ("left", "Left share", True, "Share of A/B choices that picked the left response: far from 50% "
                                 "suggests position bias"),
    ("too_fast", "Too fast", True, "Judgments faster than the study's minimum"),
    ("status", "Status", False, ""),
    ("first_seen", "First seen", False, ""),
    ("last_seen", "Last seen", False, ""),
]


def _columns(state: dict[str, str]) -> list[dict]:
    """The table's headings, each sortable one with the query for clicking it (which toggles the direction
    when it is the current sort) and its current direction, for aria-sort and the arrow."""
    current = state["sort"]
    kept = {key: value for key, value in state.items() if key not in ("sort", "page")}
    columns = []
    for name, label, numeric, help_text in RATER_COLUMNS:
        column = {"label": label, "numeric": numeric, "help": help_text, "query": "", "direction": ""}
        if name is not None:
            if current == name:
                target, column["direction"] = f"-{name}", "ascending"
            elif current == f"-{name}":
                target, column["direction"] = name, "descending"
            else:
                # Counts, rates and dates read best largest/newest first on the first click.
                target = name if name in ("pseudonym", "provider", "status") else f"-{name}"
            column["query"] = "?" + urlencode({"sort": target, **kept})
        columns.append(column)
    return columns


@require_GET
@researcher_required
def rater_list(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study_or_404(slug)
    state = _table_state(request.GET)
    raters = progress.study_raters(study=study, sort=state["sort"], status=state.get("status"))
    page = Paginator(raters, RATERS_PER_PAGE).get_page(state.get("page"))
    page.object_list = progress.raters_attach_median_seconds(page.object_list)
    context = {
        "study": study,
        "page": page,
        "state": {**state, "page": str(page.number)},
        "columns": _columns(state),
        "statuses": Rater.Status.choices,
        "tab": "raters",
    }
    return render_page_or_partial(request, "raters/researcher/raters.html",
                                   "raters/researcher/partials/rater_table.html", context)


def _after_action(request: HttpRequest, study: Study, rater: Rater, *, done: str = "", error: str = "",
                  detail: str = "") -> HttpResponse:
    """With htmx, the rater's row as it now is, with `done` or `error` in it; without, back to the table
    where the researcher was, with the message (and its `detail`) at the top."""
    state = _table_state(request.POST)
    if request.htmx:
        row = progress.raters_attach_median_seconds(progress.study_raters(study=study).filter(pk=rater.pk))[0]
        context = {"study": study, "rater": row, "state": state, "row_message": error or done,
                   "row_error": bool(error)}
        return render(request, "raters/researcher/partials/rater_row.html", context)
    if error:
        messages.error(request, f"{rater.pseudonym}: {error}")
    else:
        messages.success(request, f"{rater.pseudonym}: {done} {detail}".strip())
    return redirect(_list_url(study, state))


@require_POST
@researcher_required
def rater_block(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = _study_or_404(slug)
    rater = get_object_or_404(Rater, pk=pk, study=study)
    if rater.status == Rater.Status.BLOCKED:
        return _after_action(request, study, rater, error="not blocked: already blocked; nothing changed.")
    form = BlockForm(request.POST)
    if not form.is_valid():
        return _after_action(request, study, rater, error="not blocked: "
                             + " ".join(form.errors.get("reason", ["the reason is not valid."])))
    try:
        rater = services.rater_block(rater=rater, reason=form.cleaned_data["reason"])
    except services.RatingError as exc:
        return _after_action(request, study, rater, error=f"not blocked: {exc}")
    return _after_action(request, study, rater, done="blocked.", detail="Their judgments are kept but excluded, "
                         "and their comparisons are open to other raters.")


@require_POST
@researcher_required
def rater_unblock(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = _study_or_404(slug)
    rater = get_object_or_404(Rater, pk=pk, study=study)
    if rater.status != Rater.Status.BLOCKED:
        return _after_action(request, study, rater,
                             error=f"not blocked ({rater.get_status_display().lower()}); nothing changed.")
    rater = services.rater_unblock(rater=rater)
    return _after_action(request, study, rater, done="unblocked.", detail="Their judgments count again where "
                         "their comparisons still have room.")


# --- entry links ----------------------------------------------------------------------------------------

def _generic_count(value: str | None) -> int:
    try:
        return min(max(int(value or 1), 1), MAX_GENERIC_LINKS)
    except ValueError:
        return 1


@require_GET
@researcher_required
def entry_links(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study_or_404(slug)
    base_url = settings.PUBLIC_BASE_URL
    count = _generic_count(request.GET.get("count"))
    mturk_url = links.mturk_link(study, base_url)
    context = {
        "study": study,
        "base_url": base_url,
        # The same addresses `manage.py links` prints: a fresh generic code on every render.
        "links": links.entry_links(study, base_url),
        "generic_links": [links.generic_link(study, base_url) for _ in range(count)] if count > 1 else [],
        "count": count,
        "max_count": MAX_GENERIC_LINKS,
        "mturk_xml": links.mturk_external_question(mturk_url),
        "local_base": any(host in base_url for host in ("://127.0.0.1", "://localhost", "://[::1]")),
        "tab": "links",
    }
    response = render(request, "raters/researcher/links.html", context)
    # Every render makes new rater codes: a cached copy would hand the same code to two people.
    response["Cache-Control"] = "no-store"
    return response
