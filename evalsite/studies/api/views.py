"""REST API v1 for researchers: studies, systems, prompt and response import, coverage, comparisons.

Views are thin: serializers check the shape of the input, services make the changes, selectors read. Every
error is JSON with a `detail` saying what is wrong; where there can be several problems (invalid fields, a
rejected import file) an `errors` list gives each one as {"line", "field", "message"}.

Who may call: researchers (group `researchers`) and staff, through the default permission class. Token
authentication comes first in the settings, so a request without credentials gets 401 with a
`WWW-Authenticate: Token` header rather than 403.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from evalsite.studies import selectors, services
from evalsite.studies.api import serializers as s
from evalsite.studies.imports import ImportRejected, RowError
from evalsite.studies.models import Comparison, Prompt, Study, System
from evalsite.studies.models import Response as ResponseModel

# --- errors ---------------------------------------------------------------------------------------------


class Conflict(APIException):
    """The request is well formed but the study's current state forbids it (launch without comparisons, ...)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The study's current state does not allow this."
    default_code = "conflict"


def _rule_message(exc: DjangoValidationError) -> str:
    return " ".join(exc.messages)


def _django_to_drf(exc: DjangoValidationError) -> ValidationError:
    """Model validation from a service (full_clean) becomes a field-keyed API validation error."""
    if hasattr(exc, "error_dict"):
        return ValidationError({
            (api_settings.NON_FIELD_ERRORS_KEY if name == NON_FIELD_ERRORS else name): messages
            for name, messages in exc.message_dict.items()
        })
    return ValidationError(exc.messages)


def _flatten(detail, path: str | None = None) -> list[dict]:
    """DRF's nested error detail as a flat list of {"line", "field", "message"}."""
    if isinstance(detail, dict):
        items = []
        for key, value in detail.items():
            name = None if key == api_settings.NON_FIELD_ERRORS_KEY else str(key)
            items += _flatten(value, ".".join(p for p in (path, name) if p) or None)
        return items
    if isinstance(detail, list):
        items = []
        for index, value in enumerate(detail):
            nested = isinstance(value, (dict, list))
            items += _flatten(value, f"{path or ''}[{index}]" if nested else path)
        return items
    return [{"line": None, "field": path, "message": str(detail)}]


def _summary(errors: list[dict], limit: int = 5) -> str:
    parts = [f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors[:limit]]
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(part.rstrip(".") for part in parts) + "." if parts else "Invalid input."


def api_exception_handler(exc, context):
    """DRF's handler, with validation errors reshaped to {"detail", "errors"} like rejected imports."""
    if isinstance(exc, DjangoValidationError):
        exc = _django_to_drf(exc)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, ValidationError):
        errors = _flatten(exc.detail)
        response.data = {"detail": _summary(errors), "errors": errors}
    return response


def _rejected_response(filename: str, errors: list[RowError]) -> Response:
    head = ImportRejected(errors, filename=filename).summary(limit=0).splitlines()[0]
    return Response(
        {"detail": head, "errors": [{"line": e.line, "field": e.field, "message": e.message} for e in errors]},
        status=status.HTTP_400_BAD_REQUEST,
    )


class ApiView(APIView):
    def get_exception_handler(self):
        return api_exception_handler


class ApiListView(generics.ListAPIView):
    def get_exception_handler(self):
        return api_exception_handler


def _study(slug: str) -> Study:
    try:
        return selectors.study_get(slug=slug)
    except Study.DoesNotExist:
        raise NotFound(f"No study with slug {slug!r}.") from None


def _study_with_counts(slug: str) -> Study:
    try:
        return selectors.study_get_with_counts(slug=slug)
    except Study.DoesNotExist:
        raise NotFound(f"No study with slug {slug!r}.") from None


def _system(study: Study, name: str) -> System:
    try:
        return selectors.system_get(study=study, name=name)
    except System.DoesNotExist:
        known = ", ".join(s.name for s in selectors.study_systems(study=study)) or "none yet"
        raise NotFound(f"Study {study.slug!r} has no system named {name!r} (systems: {known}).") from None


# --- schema helpers -------------------------------------------------------------------------------------

def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(s.ErrorSerializer, description=description)


INVALID = {400: _error("Invalid input: `detail` summarises, `errors` lists each problem.")}
NOT_FOUND = {404: _error("No study (or system) with that name.")}
CONFLICT = {409: _error("The study's current state does not allow this; `detail` says why and what to do.")}


# --- studies --------------------------------------------------------------------------------------------

class StudyListView(ApiListView):
    serializer_class = s.StudySerializer

    def get_queryset(self):
        return selectors.study_list_with_counts()

    @extend_schema(tags=["studies"], summary="List studies, newest first, with counts")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["studies"], summary="Create a study (as a draft)",
        request=s.StudySerializer, responses={201: s.StudySerializer, **INVALID},
    )
    def post(self, request):
        serializer = s.StudySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        study = services.study_create(created_by=request.user, **serializer.validated_data)
        return Response(s.StudySerializer(_study_with_counts(study.slug)).data, status=status.HTTP_201_CREATED)


class StudyDetailView(ApiView):
    @extend_schema(tags=["studies"], summary="A study's settings and counts",
                   responses={200: s.StudySerializer, **NOT_FOUND})
    def get(self, request, slug: str):
        return Response(s.StudySerializer(_study_with_counts(slug)).data)

    @extend_schema(
        tags=["studies"], summary="Change a study's settings",
        description="The slug and status cannot be changed here (status: POST .../status/). Changing the "
                    "scale or pairing once judgments exist is refused with 400.",
        request=s.StudyUpdateSerializer, responses={200: s.StudySerializer, **INVALID, **NOT_FOUND},
    )
    def patch(self, request, slug: str):
        study = _study(slug)
        serializer = s.StudyUpdateSerializer(study, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.study_update(study=study, **serializer.validated_data)  # a StudyRuleError becomes a 400
        return Response(s.StudySerializer(_study_with_counts(slug)).data)


class StudyStatusView(ApiView):
    @extend_schema(
        tags=["studies"], summary="Launch, pause, close or reopen a study",
        description="draft -> live|closed, live -> paused|closed, paused -> live|closed, closed -> live. "
                    "Launching needs built comparisons.",
        request=s.StudyStatusSerializer, responses={200: s.StudySerializer, **INVALID, **NOT_FOUND, **CONFLICT},
    )
    def post(self, request, slug: str):
        study = _study(slug)
        serializer = s.StudyStatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.study_set_status(study=study, status=serializer.validated_data["status"])
        except services.StudyRuleError as exc:
            raise Conflict(_rule_message(exc)) from None
        return Response(s.StudySerializer(_study_with_counts(slug)).data)


# --- systems --------------------------------------------------------------------------------------------

class SystemListView(ApiView):
    @extend_schema(tags=["systems"], summary="A study's systems, reference first",
                   responses={200: s.SystemSerializer(many=True), **NOT_FOUND})
    def get(self, request, slug: str):
        systems = selectors.study_systems(study=_study(slug))
        return Response(s.SystemSerializer(systems, many=True).data)

    @extend_schema(
        tags=["systems"], summary="Add a system",
        description="A study has one reference; a second one, or a name already in the study, is refused "
                    "with 400.",
        request=s.SystemSerializer, responses={201: s.SystemSerializer, **INVALID, **NOT_FOUND},
    )
    def post(self, request, slug: str):
        study = _study(slug)
        serializer = s.SystemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        system = services.system_add(study=study, **serializer.validated_data)
        return Response(s.SystemSerializer(system).data, status=status.HTTP_201_CREATED)


class SystemDetailView(ApiView):
    @extend_schema(tags=["systems"], summary="One system", responses={200: s.SystemSerializer, **NOT_FOUND})
    def get(self, request, slug: str, name: str):
        return Response(s.SystemSerializer(_system(_study(slug), name)).data)

    @extend_schema(
        tags=["systems"], summary="Rename a system, change its role or metadata",
        description="Changing the role of a system whose responses have judgments is refused with 400.",
        request=s.SystemSerializer, responses={200: s.SystemSerializer, **INVALID, **NOT_FOUND},
    )
    def patch(self, request, slug: str, name: str):
        system = _system(_study(slug), name)
        serializer = s.SystemSerializer(system, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        system = services.system_update(system=system, **serializer.validated_data)
        return Response(s.SystemSerializer(system).data)

    @extend_schema(
        tags=["systems"], summary="Remove a system with its responses and comparisons",
        description="Refused with 409 once its responses have judgments.",
        responses={204: OpenApiResponse(description="Removed."), **NOT_FOUND, **CONFLICT},
    )
    def delete(self, request, slug: str, name: str):
        system = _system(_study(slug), name)
        try:
            services.system_delete(system=system)
        except services.StudyRuleError as exc:
            raise Conflict(_rule_message(exc)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- prompts and responses ------------------------------------------------------------------------------

class _RawFileParser(BaseParser):
    """Hands the request body over unparsed: the importer decodes, checks and parses it.

    It reads one byte past the import limit at most, so an oversized body is refused without being held
    in memory.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read(settings.IMPORT_MAX_BYTES + 1)


class JSONLinesParser(_RawFileParser):
    media_type = "application/jsonl"


class NDJSONParser(_RawFileParser):
    media_type = "application/x-ndjson"


class CSVParser(_RawFileParser):
    media_type = "text/csv"


RAW_EXTENSIONS = {JSONLinesParser.media_type: "jsonl", NDJSONParser.media_type: "jsonl", CSVParser.media_type: "csv"}


def _too_big(size: int | None) -> RowError:
    limit = settings.IMPORT_MAX_BYTES
    said = f"the file is {size:,} bytes, over" if size else "the file is over"
    return RowError(None, None, f"{said} the limit of {limit:,} bytes (IMPORT_MAX_BYTES); split it into smaller files")


class ImportView(ApiView):
    """POST a prompts or responses file: multipart field `file`, or the file as the raw request body."""

    parser_classes = [MultiPartParser, JSONLinesParser, NDJSONParser, CSVParser]
    importer = staticmethod(services.prompts_import)

    def post(self, request, slug: str):
        study = _study(slug)
        query = s.ImportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        replace = query.validated_data["replace"]
        if isinstance(request.data, bytes):
            data = request.data
            media_type = request.content_type.partition(";")[0].strip().lower()
            filename = query.validated_data.get("filename") or f"upload.{RAW_EXTENSIONS.get(media_type, 'jsonl')}"
            if len(data) > settings.IMPORT_MAX_BYTES:
                declared = request.META.get("CONTENT_LENGTH", "")
                return _rejected_response(filename, [_too_big(int(declared) if declared.isdigit() else None)])
        else:
            form = s.ImportUploadSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            upload = form.validated_data["file"]
            filename = upload.name or "upload"
            replace = replace or form.validated_data["replace"]
            if upload.size > settings.IMPORT_MAX_BYTES:  # refuse before reading it into memory
                return _rejected_response(filename, [_too_big(upload.size)])
            data = upload.read()
        try:
            result = self.importer(study=study, data=data, filename=filename, replace=replace,
                                   user=request.user, source="api")
        except ImportRejected as exc:
            return _rejected_response(exc.filename or filename, exc.errors)
        batch = result.batch
        return Response({
            "detail": str(result), "batch": batch.pk, "filename": batch.filename, "rows": batch.rows,
            "created": result.created, "updated": result.updated, "unchanged": result.unchanged,
            "replace": batch.replace, "warnings": result.warnings,
        }, status=status.HTTP_201_CREATED)


def _import_schema(kind: str, example_line: str):
    return extend_schema(
        tags=[kind], summary=f"Import a {kind} file (all or nothing)",
        description=(
            f"Send the file as the multipart form field `file`, or as the raw request body with "
            f"`Content-Type: application/jsonl` (or `application/x-ndjson`, `text/csv`) and an optional "
            f"`?filename=`. JSONL lines look like `{example_line}`. The format follows the file name's "
            f"extension (or the content). `replace` (form field or query parameter) overwrites rows already in "
            f"the study. A bad file is refused as a whole with one error per bad line; nothing is stored."
        ),
        parameters=[
            OpenApiParameter("filename", OpenApiTypes.STR, description="The file's name when it is sent as the "
                             "raw body; defaults to upload.jsonl or upload.csv by Content-Type."),
            OpenApiParameter("replace", OpenApiTypes.BOOL, description="Overwrite rows already in the study."),
        ],
        request={
            "multipart/form-data": s.ImportUploadSerializer,
            JSONLinesParser.media_type: OpenApiTypes.BINARY,
            NDJSONParser.media_type: OpenApiTypes.BINARY,
            CSVParser.media_type: OpenApiTypes.BINARY,
        },
        responses={
            201: s.ImportResultSerializer,
            400: _error("The file was refused: `errors` has one entry per problem, with its line and field."),
            **NOT_FOUND,
        },
    )


class PromptImportView(ImportView):
    importer = staticmethod(services.prompts_import)

    @_import_schema("prompts", '{"id": "koala_0", "prompt": "...", "category": "..."}')
    def post(self, request, slug: str):
        return super().post(request, slug)


class ResponseImportView(ImportView):
    importer = staticmethod(services.responses_import)

    @_import_schema("responses", '{"prompt_id": "koala_0", "system": "koala-13b", "text": "...", "meta": {}}')
    def post(self, request, slug: str):
        return super().post(request, slug)


class PromptListView(ApiListView):
    serializer_class = s.PromptSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no study to look up
            return Prompt.objects.none()
        return selectors.study_prompts(study=_study(self.kwargs["slug"]),
                                       category=self.request.query_params.get("category"))

    @extend_schema(
        tags=["prompts"], summary="A study's prompts in file order",
        parameters=[OpenApiParameter("category", OpenApiTypes.STR,
                                     description="Only this category; empty for prompts without one.")],
        responses={200: s.PromptSerializer(many=True), **NOT_FOUND},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ResponseListView(ApiListView):
    serializer_class = s.ResponseSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ResponseModel.objects.none()
        study = _study(self.kwargs["slug"])
        system = None
        name = self.request.query_params.get("system")
        if name is not None:
            try:
                system = selectors.system_get(study=study, name=name)
            except System.DoesNotExist:
                known = ", ".join(x.name for x in selectors.study_systems(study=study)) or "none yet"
                raise ValidationError({"system": f"no system named {name!r} in the study (systems: {known})"}) from None
        return selectors.study_responses(study=study, system=system)

    @extend_schema(
        tags=["responses"], summary="A study's responses with their provenance",
        parameters=[OpenApiParameter("system", OpenApiTypes.STR, description="Only this system's responses.")],
        responses={200: s.ResponseSerializer(many=True), **INVALID, **NOT_FOUND},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# --- coverage and comparisons ---------------------------------------------------------------------------

class CoverageView(ApiView):
    @extend_schema(
        tags=["studies"], summary="Per system: how many prompts have a response, which are missing",
        responses={200: s.CoverageSerializer, **NOT_FOUND},
    )
    def get(self, request, slug: str):
        study = _study(slug)
        rows = selectors.study_coverage(study=study)
        prompts = rows[0].prompts if rows else selectors.study_prompts(study=study).count()
        return Response(s.CoverageSerializer({"prompts": prompts, "systems": rows}).data)


class ComparisonBuildView(ApiView):
    @extend_schema(
        tags=["comparisons"], summary="Build the comparisons the study's systems and pairing call for",
        description="Idempotent: adds what is missing, removes unjudged comparisons the design no longer "
                    "calls for. Refused with 409 when there is nothing to compare or judged comparisons "
                    "would be lost.",
        request=None, responses={200: s.BuildResultSerializer, **NOT_FOUND, **CONFLICT},
    )
    def post(self, request, slug: str):
        study = _study(slug)
        try:
            result = services.comparisons_build(study=study)
        except services.StudyRuleError as exc:
            raise Conflict(_rule_message(exc)) from None
        return Response(s.BuildResultSerializer({
            "detail": str(result), "created": result.created, "removed": result.removed, "total": result.total,
            "skipped_prompts": result.skipped_prompts,
        }).data)


class ComparisonListView(ApiListView):
    serializer_class = s.ComparisonSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Comparison.objects.none()
        return selectors.study_comparisons(study=_study(self.kwargs["slug"]))

    @extend_schema(tags=["comparisons"], summary="A study's comparisons",
                   responses={200: s.ComparisonSerializer(many=True), **NOT_FOUND})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
