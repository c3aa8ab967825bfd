"""The results page and its CSV downloads, under /studies/<slug>/results/. Researchers only.

Thin views: the numbers come from selectors.study_results (cached per study; the expert audits beside the
crowd included), the charts from charts.py, the files from exports.csv_stream. With htmx the excluded-judgments toggle swaps only the results body; the
same link works as a plain page load without JavaScript.
"""
from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from evalsite.results import charts, exports, selectors
from evalsite.studies.decorators import researcher_required
from evalsite.studies.models import Study

RATERS_SHOWN = 20
_TRUE = {"1", "true", "yes", "on"}


def flag(value: str | None) -> bool:
    """A query-string switch: 1/true/yes/on turn it on, anything else (or nothing) leaves it off."""
    return (value or "").strip().lower() in _TRUE


def csv_response(export: exports.Export, study: Study, options: exports.ExportOptions) -> StreamingHttpResponse:
    """The export streamed as a download; shared by the page and the API so both send the same file."""
    response = StreamingHttpResponse(exports.csv_stream(export, study, options), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export.filename(study)}"'
    # Judgments name raters and systems: no shared cache may keep a copy.
    response["Cache-Control"] = "private, no-store"
    return response


def _wants_partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def page_context(study: Study, results: selectors.StudyResults) -> dict:
    data = results.to_dict()
    summary = data["summary"]
    reference = results.reference.name if results.reference else None
    context = {
        "study": study,
        "results": results,
        "data": data,
        "summary": summary,
        "reference_name": reference,
        "include_excluded": results.include_excluded,
        "toggle_query": "?" + urlencode({"include_excluded": "0" if results.include_excluded else "1"}),
        "export_query": "?include_excluded=1" if results.include_excluded else "",
        "exports": list(exports.EXPORTS.values()),
        "charts": {},
    }
    context.update(audit_context(study, data["audits"]))
    if results.is_empty:
        return context
    h2h = summary["head_to_head"]
    bt = summary["bradley_terry"]
    style = summary["style"]
    raters = [r for r in summary["agreement"]["raters"] if r["n_scored"]]
    # By the top of the interval: a rater with one judgment against the majority is not the worst of all.
    raters.sort(key=lambda r: (r["wilson"]["high"], r["rate"], -r["n_scored"]))
    categories: dict[str, list[dict]] = {}
    for row in summary["by_category"]:
        categories.setdefault(row["category_name"], []).append(row)
    context.update(
        charts={
            "head_to_head": charts.head_to_head_chart(h2h, reference=reference) if h2h and reference else "",
            "ratings": charts.ratings_chart(bt["ratings"], reference=reference) if bt["ratings"] else "",
            "style": charts.style_chart(style["candidates"]) if style and style["candidates"] else "",
            "scaling": [charts.scaling_chart(series, reference=reference or "the reference", index=i)
                        for i, series in enumerate(data["scaling"])],
        },
        ratings=sorted(bt["ratings"], key=lambda r: (r["rank"], -(r["elo"] or 0))),
        raters_low=raters[:RATERS_SHOWN],
        raters_scored=len(raters),
        categories=categories,
    )
    context["scaling_rows"] = list(zip(data["scaling"], context["charts"]["scaling"], strict=True))
    return context


def audit_context(study: Study, audits: dict | None) -> dict:
    """The crowd-vs-experts section: the audit report (None without submitted audits), its chart, its
    per-category rows grouped by category, and whether the study has an audit plan at all (for the note)."""
    if audits is None:
        # Imported here: raters.audits.selectors loads evalsite.stats (scipy), which the CSV downloads served
        # by this module must not (the export's memory budget).
        from raters.audits.selectors import plan_for_study

        return {"audits": None, "audit_plan_exists": plan_for_study(study=study) is not None}
    contrast = audits["report"]["contrast"]
    by_category: dict[str, list[dict]] = {}
    for row in audits["report"]["contrast_by_category"]:
        by_category.setdefault(row["category_name"], []).append(row)
    return {
        "audits": audits,
        "audit_plan_exists": True,
        "audit_chart": (charts.crowd_expert_chart(contrast, reference=audits["reference_name"] or "the reference")
                        if contrast else ""),
        "audit_categories": by_category,
        "audit_exports": [exports.EXPORTS[name] for name in ("audits", "findings")],
    }


@require_GET
@researcher_required
def results_page(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    results = selectors.study_results(study=study, include_excluded=flag(request.GET.get("include_excluded")))
    context = page_context(study, results)
    template = "results/partials/results_body.html" if _wants_partial(request) else "results/results.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_GET
@researcher_required
def export_csv(request: HttpRequest, slug: str, what: str) -> StreamingHttpResponse:
    study = get_object_or_404(Study, slug=slug)
    export = exports.EXPORTS.get(what)
    if export is None:
        raise Http404(f"No export named {what!r}; choose one of: {', '.join(exports.EXPORTS)}.")
    options = exports.ExportOptions(bom=flag(request.GET.get("bom")),
                                    include_excluded=flag(request.GET.get("include_excluded")))
    return csv_response(export, study, options)
