"""REST API for results: the numbers as JSON and the CSV exports, under /api/v1/studies/<slug>/results/.

Researchers only (token or session), like the rest of the API; errors are JSON with a `detail`.
"""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from evalsite.results import exports, selectors
from evalsite.results import serializers as rs
from evalsite.results.views import csv_response
from evalsite.studies import selectors as study_selectors
from evalsite.studies.api.serializers import ErrorSerializer
from evalsite.studies.api.views import ApiView
from evalsite.studies.models import Study


def _study(slug: str) -> Study:
    try:
        return study_selectors.study_get(slug=slug)
    except Study.DoesNotExist:
        raise NotFound(f"No study with slug {slug!r}.") from None


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


AUTH_ERRORS = {
    401: _error("No credentials, or an unknown token: send `Authorization: Token <key>`."),
    403: _error("Authenticated, but not a researcher."),
    404: _error("No study with that slug."),
}


class ResultsView(ApiView):
    @extend_schema(
        tags=["results"], summary="A study's results: rates, ratings, style control, agreement",
        description="The numbers of the results page. Gold judgments are never counted; judgments excluded by "
                    "quality control are left out unless `include_excluded=true`. Results are cached per study "
                    "and recomputed when its judgments or its submitted expert audits change. `audits` holds the "
                    "expert factuality audits beside the crowd's preference (null without any).",
        parameters=[rs.ResultsQuerySerializer],
        responses={200: rs.StudyResultsSerializer, 400: _error("A query parameter is not valid."), **AUTH_ERRORS},
    )
    def get(self, request, slug: str):
        study = _study(slug)
        query = rs.ResultsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        results = selectors.study_results(study=study, include_excluded=query.validated_data["include_excluded"])
        return Response(results.to_dict())


class CSVRenderer(BaseRenderer):
    """Lets a client that asks for text/csv through content negotiation; the body itself is streamed by
    the view, so this only renders error details (as plain text)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and "detail" in data:
            return str(data["detail"]).encode()
        return b"" if data is None else str(data).encode()


class ExportView(ApiView):
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        tags=["results"], summary="Download a CSV export (streamed)",
        description="`judgments`: one row per judgment (gold and excluded ones flagged); `responses`: one row per "
                    "response with provenance; `summary`: the results in long form; `audits`: one row per submitted "
                    "expert audit; `findings`: one row per span an expert flagged, with its offsets into the "
                    "response text and the quoted text. UTF-8, RFC 4180 quoting; text "
                    "cells starting with = + - @ tab or CR get a leading single quote against spreadsheet "
                    "formula injection.",
        parameters=[
            OpenApiParameter("what", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(exports.EXPORTS),
                             description="Which export."),
            rs.ExportQuerySerializer,
            # The renderers exist for content negotiation (Accept: text/csv), not as a ?format= switch.
            OpenApiParameter("format", exclude=True),
        ],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="The CSV file, as an "
                                                                                        "attachment."),
                   **{(code, "application/json"): response for code, response in AUTH_ERRORS.items()}},
    )
    def get(self, request, slug: str, what: str):
        study = _study(slug)
        export = exports.EXPORTS.get(what)
        if export is None:
            raise NotFound(f"No export named {what!r}; choose one of: {', '.join(exports.EXPORTS)}.")
        query = rs.ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        options = exports.ExportOptions(bom=query.validated_data["bom"],
                                        include_excluded=query.validated_data["include_excluded"])
        return csv_response(export, study, options)
