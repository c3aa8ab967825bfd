"""Forms of the researcher pages. They validate input; the views hand the cleaned data to the services."""
from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from evalsite.studies.models import Comparison, Study, System

STUDY_SETTINGS_FIELDS = [
    "title",
    "public_title",
    "instructions",
    "scale",
    "pairing",
    "reason_mode",
    "judgments_per_comparison",
    "per_rater_cap",
    "lease_ttl_seconds",
    "gold_rate",
    "gold_accuracy_threshold",
    "gold_min_answered",
    "min_seconds_per_judgment",
]


class StudyForm(forms.ModelForm):
    """Create a study. The slug is fixed once created: rater links and exports carry it."""

    class Meta:
        model = Study
        fields = ["slug", *STUDY_SETTINGS_FIELDS]
        widgets = {
            "instructions": forms.Textarea(attrs={"rows": 8}),
            "gold_rate": forms.NumberInput(attrs={"step": "0.01", "min": "0", "max": "1"}),
            "gold_accuracy_threshold": forms.NumberInput(attrs={"step": "0.01", "min": "0", "max": "1"}),
        }
        labels = {
            "judgments_per_comparison": "Judgments per comparison (k)",
            "per_rater_cap": "Per-rater cap",
            "lease_ttl_seconds": "Lease TTL",
            "gold_min_answered": "Gold answers before screening",
            "min_seconds_per_judgment": "Minimum seconds per judgment",
        }
        help_texts = {
            "slug": "Letters, digits, hyphens. Used in your URLs, the API and exports (never shown to raters); "
                    "it cannot be changed later.",
            "title": "For researchers only: raters never see it, so it may name the systems.",
            "instructions": "Markdown, shown to raters before they start.",
            "lease_ttl_seconds": "Seconds. An assignment not submitted in time returns to the pool.",
            "min_seconds_per_judgment": "Seconds. Faster judgments are flagged as too fast.",
        }


class StudyEditForm(StudyForm):
    class Meta(StudyForm.Meta):
        fields = STUDY_SETTINGS_FIELDS


def add_service_error(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form: on the field it names when the form has it."""
    if hasattr(exc, "error_dict"):
        for name, messages in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, messages)
    else:
        form.add_error(None, exc.messages)


class JSONObjectField(forms.CharField):
    """A textarea holding a JSON object; empty means {}."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"})

    def prepare_value(self, value):
        if isinstance(value, dict):
            return json.dumps(value, indent=2, ensure_ascii=False) if value else ""
        return value

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return {}
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
        if not isinstance(parsed, dict):
            raise ValidationError('Must be a JSON object, e.g. {"base_model": "llama-13b", "params_b": 13}.')
        return parsed


class SystemForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="As the response files name it, e.g. koala-13b.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    role = forms.ChoiceField(choices=System.Role.choices, initial=System.Role.CANDIDATE)
    metadata = JSONObjectField(
        required=False, help_text='Optional JSON object, e.g. {"base_model": "llama-13b", "params_b": 13}.'
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if name != name.strip():
            raise ValidationError("Remove the leading or trailing spaces: response files must match the name exactly.")
        return name


class ImportForm(forms.Form):
    file = forms.FileField(help_text="JSONL or CSV, UTF-8.")
    replace = forms.BooleanField(
        required=False, label="Replace rows already in the study",
        help_text="Without it, an id already imported is an error.",
    )

    def clean_file(self):
        # Checked before the view reads the upload into memory; the service checks again for other callers.
        upload = self.cleaned_data["file"]
        limit = settings.IMPORT_MAX_BYTES
        if upload.size > limit:
            raise ValidationError(
                f"The file is {upload.size:,} bytes, over the limit of {limit:,} bytes (IMPORT_MAX_BYTES); "
                "split it into smaller files."
            )
        return upload


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Study.Status.choices)


class GoldForm(forms.Form):
    action = forms.ChoiceField(choices=[("mark", "Mark gold"), ("unmark", "Unmark")])
    expected = forms.ChoiceField(choices=[("", "—"), *Comparison.Expected.choices], required=False)
    note = forms.CharField(required=False, max_length=2000)

    def clean(self):
        data = super().clean()
        if data.get("action") == "mark" and not data.get("expected"):
            self.add_error("expected", "Choose the expected answer (A, B or tie) to mark a gold comparison.")
        return data


NO_CATEGORY = "__none__"  # the filter value for prompts without a category ("" means no filter)


class PromptFilterForm(forms.Form):
    category = forms.ChoiceField(required=False)

    def __init__(self, *args, categories: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "All categories")] + [
            (c or NO_CATEGORY, c or "(no category)") for c in categories
        ]

    def selected_category(self) -> str | None:
        """The category to filter on: None for all, "" for prompts without one."""
        if not self.is_valid() or not self.cleaned_data["category"]:
            return None
        value = self.cleaned_data["category"]
        return "" if value == NO_CATEGORY else value
