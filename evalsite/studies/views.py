"""The researcher pages: studies, systems, uploads, coverage, comparisons, API token.

Views stay thin: forms validate, services write, selectors read. Each page works as plain HTML forms with
POST/redirect/GET; when htmx sends the request (`request.htmx`) the same view answers with the named partial
instead of the whole page.
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from evalsite.studies import selectors, services
from evalsite.studies.decorators import researcher_required
from evalsite.studies.forms import (
    GoldForm,
    ImportForm,
    PromptFilterForm,
    StatusForm,
    StudyEditForm,
    StudyForm,
    SystemForm,
    add_service_error,
)
from evalsite.studies.htmx import render_page_or_partial
from evalsite.studies.imports import ImportRejected
from evalsite.studies.models import Comparison, Study, System

IMPORT_ERRORS_SHOWN = 200
COMPARISONS_PER_PAGE = 50
PROMPTS_PER_PAGE = 25

# Buttons offered for each status change; the services decide what is allowed.
STATUS_ACTIONS = {
    (Study.Status.DRAFT, Study.Status.LIVE): "Launch",
    (Study.Status.PAUSED, Study.Status.LIVE): "Resume",
    (Study.Status.CLOSED, Study.Status.LIVE): "Reopen",
    (Study.Status.LIVE, Study.Status.PAUSED): "Pause",
    (Study.Status.DRAFT, Study.Status.CLOSED): "Close",
    (Study.Status.LIVE, Study.Status.CLOSED): "Close",
    (Study.Status.PAUSED, Study.Status.CLOSED): "Close",
}

IMPORTERS = {
    "prompts": services.prompts_import,
    "responses": services.responses_import,
}


def _study_or_404(slug: str) -> Study:
    return get_object_or_404(Study, slug=slug)


# --- studies --------------------------------------------------------------------------------------------

@require_GET
@researcher_required
def study_list(request: HttpRequest) -> HttpResponse:
    return render(request, "studies/study_list.html", {"studies": selectors.study_list()})


@require_http_methods(["GET", "POST"])
@researcher_required
def study_create(request: HttpRequest) -> HttpResponse:
    form = StudyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            study = services.study_create(slug=data.pop("slug"), title=data.pop("title"),
                                          created_by=request.user, **data)
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Study “{study.title}” created. Next: add its systems and upload prompts.")
            return redirect(study)
    return render(request, "studies/study_form.html", {"form": form, "study": None})


@require_http_methods(["GET", "POST"])
@researcher_required
def study_edit(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study_or_404(slug)
    # The form gets its own copy: a ModelForm writes cleaned values onto its instance while validating,
    # and study_update must compare the new values with the stored ones to refuse unsafe changes.
    form = StudyEditForm(request.POST if request.method == "POST" else None,
                         instance=Study.objects.get(pk=study.pk))
    if request.method == "POST" and form.is_valid():
        try:
            services.study_update(study=study, **form.cleaned_data)
        except ValidationError as exc:
            add_service_error(form, exc)
            study = _study_or_404(slug)  # study_update may have set attributes before refusing
        else:
            messages.success(request, "Settings saved.")
            return redirect(study)
    return render(request, "studies/study_form.html", {"form": form, "study": study})


def _status_actions(study: Study) -> list[tuple[str, str]]:
    allowed = services.STATUS_TRANSITIONS.get(study.status, set())
    return [(target, label) for (source, target), label in STATUS_ACTIONS.items()
            if source == study.status and target in allowed]


def _detail_context(study: Study, **overrides) -> dict:
    context = {
        "study": study,
        "status_actions": _status_actions(study),
        "overview": selectors.study_overview(study=study),
        "systems": selectors.study_systems(study=study),
        "system_form": SystemForm(),
        "coverage": selectors.study_coverage(study=study),
        "batches": selectors.study_import_batches(study=study, limit=10),
        "prompts_import": _import_box(study, "prompts"),
        "responses_import": _import_box(study, "responses"),
    }
    context.update(overrides)
    return context


@require_GET
@researcher_required
def study_detail(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study_or_404(slug)
    return render(request, "studies/study_detail.html", _detail_context(study))


@require_POST
@researcher_required
def study_set_status(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study_or_404(slug)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Unknown status requested; nothing changed.")
        return redirect(study)
    try:
        services.study_set_status(study=study, status=form.cleaned_data["status"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"The study is now {study.get_status_display().lower()}.")
    return redirect(study)


# --- systems --------------------------------------------------------------------------------------------

@require_POST
@researcher_required
def system_add(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study_or_404(slug)
    form = SystemForm(request.POST)
    added = None
    if form.is_valid():
        try:
            added = services.system_add(study=study, **form.cleaned_data)
        except ValidationError as exc:
            add_service_error(form, exc)
    if request.htmx:
        # The systems section and, out of band, the coverage table that gained a row.
        context = {
            "study": study,
            "systems": selectors.study_systems(study=study),
            "system_form": SystemForm() if added else form,
            "system_added": added,
            "overview": selectors.study_overview(study=study),
            "coverage": selectors.study_coverage(study=study),
        }
        return render(request, "studies/partials/system_add_response.html", context)
    if added:
        messages.success(request, f"System {added.name} added as {added.get_role_display().lower()}.")
        return redirect(study)
    return render(request, "studies/study_detail.html", _detail_context(study, system_form=form))


@require_http_methods(["GET", "POST"])
@researcher_required
def system_edit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = _study_or_404(slug)
    system = get_object_or_404(System, pk=pk, study=study)
    initial = {"name": system.name, "role": system.role, "metadata": system.metadata}
    form = SystemForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.system_update(system=system, **form.cleaned_data)
        except ValidationError as exc:
            add_service_error(form, exc)
            system = get_object_or_404(System, pk=pk, study=study)
        else:
            messages.success(request, f"System {system.name} saved.")
            return redirect(study)
    return render(request, "studies/system_form.html", {"study": study, "system": system, "form": form})


@require_POST
@researcher_required
def system_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = _study_or_404(slug)
    system = get_object_or_404(System, pk=pk, study=study)
    name = system.name
    try:
        services.system_delete(system=system)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"System {name} removed, with its responses and comparisons.")
    return redirect(study)


# --- imports --------------------------------------------------------------------------------------------

def _import_box(study: Study, kind: str, form: ImportForm | None = None, errors: list | None = None,
                filename: str = "", result=None) -> dict:
    """Everything one upload form needs; `errors` are the RowErrors of a rejected file."""
    errors = errors or []
    return {
        "kind": kind,
        "filename": filename,
        "action": reverse(f"studies:import_{kind}", args=[study.slug]),
        "form": form or ImportForm(auto_id=f"id_{kind}_%s"),
        "errors": errors[:IMPORT_ERRORS_SHOWN],
        "errors_total": len(errors),
        "errors_more": max(0, len(errors) - IMPORT_ERRORS_SHOWN),
        "result": result,
    }


@require_POST
@researcher_required
def study_import(request: HttpRequest, slug: str, kind: str) -> HttpResponse:
    study = _study_or_404(slug)
    form = ImportForm(request.POST, request.FILES, auto_id=f"id_{kind}_%s")
    errors, result, filename = [], None, ""
    if form.is_valid():
        upload = form.cleaned_data["file"]
        filename = upload.name
        try:
            result = IMPORTERS[kind](study=study, data=upload.read(), filename=upload.name,
                                     replace=form.cleaned_data["replace"], user=request.user, source="upload")
        except ImportRejected as exc:
            # Whole-file problems first, then by line: the services add database checks after parsing.
            errors = sorted(exc.errors, key=lambda error: (error.line is not None, error.line or 0))
    if result is not None:
        box = _import_box(study, kind, result=result)
    else:
        box = _import_box(study, kind, form=form, errors=errors, filename=filename)

    if request.htmx:
        # The form swaps itself; the numbers that an import changes follow out of band.
        context = {
            "study": study,
            "box": box,
            "overview": selectors.study_overview(study=study),
            "coverage": selectors.study_coverage(study=study),
            "batches": selectors.study_import_batches(study=study, limit=10),
            "oob": result is not None,
        }
        return render(request, "studies/partials/import_response.html", context)
    if result is not None:
        messages.success(request, f"{kind.capitalize()} imported: {result}.")
        return redirect(study)
    return render(request, "studies/study_detail.html",
                  _detail_context(study, **{f"{kind}_import": box}))


# --- comparisons ----------------------------------------------------------------------------------------

@require_POST
@researcher_required
def comparisons_build(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study_or_404(slug)
    try:
        result = services.comparisons_build(study=study)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Comparisons built: {result}.")
    return redirect(study)


@require_GET
@researcher_required
def comparison_list(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study_or_404(slug)
    comparisons = selectors.study_comparisons(study=study)
    gold_only = request.GET.get("gold") == "1"
    if gold_only:
        comparisons = comparisons.filter(is_gold=True)
    page = Paginator(comparisons, COMPARISONS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"study": study, "page": page, "gold_only": gold_only,
               "expected_choices": Comparison.Expected.choices}
    return render_page_or_partial(request, "studies/comparison_list.html",
                                   "studies/partials/comparison_table.html", context)


@require_POST
@researcher_required
def comparison_gold(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = _study_or_404(slug)
    comparison = get_object_or_404(selectors.study_comparisons(study=study), pk=pk)
    form = GoldForm(request.POST)
    error = None
    if form.is_valid():
        try:
            if form.cleaned_data["action"] == "mark":
                services.comparison_mark_gold(comparison=comparison, expected=form.cleaned_data["expected"],
                                              note=form.cleaned_data["note"])
            else:
                services.comparison_unmark_gold(comparison=comparison)
        except ValidationError as exc:
            error = " ".join(exc.messages)
    else:
        error = " ".join(message for field_errors in form.errors.values() for message in field_errors)
    if request.htmx:
        context = {"study": study, "comparison": comparison, "row_error": error,
                   "expected_choices": Comparison.Expected.choices, "page_number": request.POST.get("page", "")}
        return render(request, "studies/partials/comparison_row.html", context)
    if error:
        messages.error(request, f"Comparison #{comparison.pk}: {error}")
    elif comparison.is_gold:
        messages.success(request, f"Comparison #{comparison.pk} is now gold ({comparison.get_gold_expected_display()}).")
    else:
        messages.success(request, f"Comparison #{comparison.pk} is no longer gold.")
    url = reverse("studies:comparisons", args=[study.slug])
    page = request.POST.get("page", "")
    return redirect(f"{url}?page={page}" if page.isdigit() else url)


# --- prompts --------------------------------------------------------------------------------------------

@require_GET
@researcher_required
def prompt_list(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study_or_404(slug)
    form = PromptFilterForm(request.GET or None, categories=selectors.study_prompt_categories(study=study))
    prompts = selectors.study_prompts(study=study, category=form.selected_category())
    page = Paginator(prompts, PROMPTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"study": study, "page": page, "filter_form": form}
    return render_page_or_partial(request, "studies/prompt_list.html",
                                   "studies/partials/prompt_table.html", context)


# --- API token ------------------------------------------------------------------------------------------

@require_GET
@researcher_required
def api_token(request: HttpRequest) -> HttpResponse:
    context = {
        "token": selectors.api_token_get(user=request.user),
        "api_url": request.build_absolute_uri("/api/v1/studies/"),
    }
    return render(request, "studies/api_token.html", context)


@require_POST
@researcher_required
def api_token_regenerate(request: HttpRequest) -> HttpResponse:
    had_token = selectors.api_token_get(user=request.user) is not None
    services.api_token_regenerate(user=request.user)
    messages.success(request, "New API token created; the previous one no longer works." if had_token
                     else "API token created.")
    return redirect("studies:api_token")
