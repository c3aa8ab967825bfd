"""Shapes of the REST API's requests and responses.

Serializers only check the shape of input (types, choices, lengths); the rules (one reference per study, no
change that invalidates judgments, ...) live in services, which the views call with the validated data.
Prompts and responses come out with the keys of the import files (`id`/`prompt`, `prompt_id`/`system`/`text`),
so what a researcher uploads and what the API returns read the same.
"""
from __future__ import annotations

from rest_framework import serializers

from evalsite.studies.models import Comparison, Prompt, Response, Study, System


class ErrorItemSerializer(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True, help_text="1-based line in the uploaded file, or null.")
    field = serializers.CharField(allow_null=True, help_text="The field (or file column) at fault, or null.")
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """Every error response: `detail` says what went wrong; `errors` lists each problem where there are several."""

    detail = serializers.CharField()
    errors = ErrorItemSerializer(many=True, required=False)


def _require_object(value):
    # JSONField accepts any JSON value; these settings are looked up by key, so they must be objects.
    if not isinstance(value, dict):
        raise serializers.ValidationError('must be a JSON object, e.g. {"key": "value"}.')
    return value


# --- studies --------------------------------------------------------------------------------------------

class StudySerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)
    n_systems = serializers.IntegerField(read_only=True)
    n_prompts = serializers.IntegerField(read_only=True)
    n_responses = serializers.IntegerField(read_only=True)
    n_comparisons = serializers.IntegerField(read_only=True)
    n_judgments = serializers.IntegerField(read_only=True, help_text="Judgments collected so far.")

    class Meta:
        model = Study
        fields = [
            "slug", "title", "instructions", "status", "scale", "pairing", "reason_mode",
            "judgments_per_comparison", "per_rater_cap", "lease_ttl_seconds", "gold_rate",
            "gold_accuracy_threshold", "gold_min_answered", "min_seconds_per_judgment", "completion_code",
            "screened_out_code", "provider_settings", "created_by", "created_at", "updated_at",
            "n_systems", "n_prompts", "n_responses", "n_comparisons", "n_judgments",
        ]
        # Status changes go through POST .../status/, which applies the launch rules.
        read_only_fields = ["status", "created_at", "updated_at"]

    def validate_provider_settings(self, value):
        return _require_object(value)

    def validate(self, attrs):
        # The model's check constraint would only say "constraint violated"; say which fields and why.
        completion = attrs.get("completion_code", getattr(self.instance, "completion_code", None))
        screened = attrs.get("screened_out_code", getattr(self.instance, "screened_out_code", None))
        if completion and screened and completion == screened:
            raise serializers.ValidationError(
                {"screened_out_code": "must differ from completion_code, or screened-out raters would be paid "
                                      "as if they had completed the study."})
        return attrs


class StudyUpdateSerializer(StudySerializer):
    class Meta(StudySerializer.Meta):
        # The slug is in every rater link already handed out; changing it would break them.
        read_only_fields = ["slug", *StudySerializer.Meta.read_only_fields]

    # DRF would silently ignore these; a client asking to change them must learn that nothing changed. The
    # current value is accepted, so a study read with GET can be sent back whole.
    REFUSED = {
        "status": "cannot be changed here: POST {\"status\": ...} to /api/v1/studies/<slug>/status/ "
                  "(it checks that the study can be launched).",
        "slug": "cannot be changed: rater links already handed out contain it. Create a new study instead.",
    }

    def validate(self, attrs):
        refused = {name: message for name, message in self.REFUSED.items()
                   if name in self.initial_data and self.initial_data[name] != getattr(self.instance, name)}
        if refused:
            raise serializers.ValidationError(refused)
        return super().validate(attrs)


class StudyStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[Study.Status.LIVE, Study.Status.PAUSED, Study.Status.CLOSED],
        help_text="live launches (or reopens) the study, paused stops new assignments, closed ends it.",
    )


# --- systems --------------------------------------------------------------------------------------------

class SystemSerializer(serializers.ModelSerializer):
    metadata = serializers.JSONField(
        required=False, help_text='A JSON object, e.g. {"base_model": "llama-13b", "params_b": 13}.'
    )

    class Meta:
        model = System
        fields = ["id", "name", "role", "metadata", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_metadata(self, value):
        return _require_object(value)


# --- prompts and responses ------------------------------------------------------------------------------

class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.CharField(trim_whitespace=False)


class PromptSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id", read_only=True, help_text="The id from the prompts file.")
    prompt = serializers.CharField(source="text", read_only=True, trim_whitespace=False,
                                   help_text="The prompt text; empty for a multi-turn prompt.")
    messages = MessageSerializer(many=True, read_only=True, allow_null=True,
                                 help_text="The conversation of a multi-turn prompt, else null.")

    class Meta:
        model = Prompt
        fields = ["id", "prompt", "messages", "category", "position", "import_batch", "created_at", "updated_at"]
        read_only_fields = fields


class ResponseSerializer(serializers.ModelSerializer):
    prompt_id = serializers.CharField(source="prompt.external_id", read_only=True)
    system = serializers.CharField(source="system.name", read_only=True)
    text = serializers.CharField(read_only=True, trim_whitespace=False)

    class Meta:
        model = Response
        fields = [
            "id", "prompt_id", "system", "text", "source", "import_batch", "generation_job_id", "model_name",
            "sampling_params", "seed", "finish_reason", "prompt_tokens", "completion_tokens", "latency_ms",
            "meta", "created_at", "updated_at",
        ]
        read_only_fields = fields


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,  # the importer explains an empty file better ("the file is empty")
        error_messages={"required": "No file was sent: upload it as the multipart form field 'file', or send it "
                                    "as the request body with Content-Type application/jsonl or text/csv."},
        help_text="Prompts: JSONL ({\"id\", \"prompt\" or \"messages\", \"category\"}) or CSV (id, prompt, "
                  "category). Responses: JSONL ({\"prompt_id\", \"system\", \"text\", \"meta\"}) or CSV "
                  "(prompt_id, system, text). The format follows the file name's extension.",
    )
    replace = serializers.BooleanField(
        required=False, default=False,
        help_text="Overwrite rows whose ids are already in the study (refused where judgments exist).",
    )


class ImportQuerySerializer(serializers.Serializer):
    filename = serializers.CharField(required=False, max_length=255)
    replace = serializers.BooleanField(required=False, default=False)


class ImportResultSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A one-line summary.")
    batch = serializers.IntegerField(help_text="The id of the import batch every stored row points to.")
    filename = serializers.CharField()
    rows = serializers.IntegerField(help_text="Rows in the file.")
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    replace = serializers.BooleanField()
    warnings = serializers.ListField(child=serializers.CharField())


# --- coverage and comparisons ---------------------------------------------------------------------------

class SystemCoverageSerializer(serializers.Serializer):
    system = serializers.CharField(source="system.name")
    role = serializers.CharField(source="system.role")
    prompts = serializers.IntegerField()
    responses = serializers.IntegerField()
    missing = serializers.IntegerField()
    missing_ids = serializers.ListField(child=serializers.CharField(),
                                        help_text="The first missing prompt ids, in file order.")
    complete = serializers.BooleanField()
    percent = serializers.FloatField()


class CoverageSerializer(serializers.Serializer):
    prompts = serializers.IntegerField()
    systems = SystemCoverageSerializer(many=True)


class BuildResultSerializer(serializers.Serializer):
    detail = serializers.CharField()
    created = serializers.IntegerField()
    removed = serializers.IntegerField()
    total = serializers.IntegerField()
    skipped_prompts = serializers.IntegerField(help_text="Prompts lacking a response from a system to compare.")


class ComparisonSerializer(serializers.ModelSerializer):
    prompt_id = serializers.CharField(source="prompt.external_id", read_only=True)
    system_a = serializers.CharField(source="response_a.system.name", read_only=True)
    system_b = serializers.CharField(source="response_b.system.name", read_only=True)

    class Meta:
        model = Comparison
        fields = ["id", "prompt_id", "system_a", "system_b", "response_a", "response_b", "is_gold",
                  "gold_expected", "judgments_done"]
        read_only_fields = fields
