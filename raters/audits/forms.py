"""The researcher's audit plan form. The expert's finding and verdict forms are plain POSTs read by the views,
like the rating form: the services validate them and say what is wrong."""
from __future__ import annotations

from django import forms

from raters.audits.models import AuditPlan


class AuditPlanForm(forms.ModelForm):
    class Meta:
        model = AuditPlan
        fields = ["selection", "sample_size", "sample_seed", "decided_min_judgments", "audits_per_response",
                  "lease_ttl_seconds", "instructions", "is_open"]
        widgets = {
            "selection": forms.RadioSelect,
            "instructions": forms.Textarea(attrs={"rows": 6}),
            "sample_size": forms.NumberInput(attrs={"min": "1"}),
            "decided_min_judgments": forms.NumberInput(attrs={"min": "1"}),
        }
        labels = {
            "selection": "Which responses",
            "sample_size": "Sample size N (per system)",
            "sample_seed": "Sample seed",
            "decided_min_judgments": "Judgments that make a comparison decided",
            "audits_per_response": "Experts per response (m)",
            "lease_ttl_seconds": "Lease (seconds)",
            "instructions": "Instructions for experts",
            "is_open": "Open: experts can audit now",
        }
        help_texts = {
            "is_open": "Closing stops new responses from being handed out; an expert with one open can finish it.",
        }

    def __init__(self, *args, study=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sample_seed"].required = False
        if study is not None:
            self.fields["decided_min_judgments"].help_text = (
                f"Empty: the study's k ({study.judgments_per_comparison}). Counted judgments only: excluded "
                "and gold ones do not count.")

    def clean(self):
        data = super().clean()
        if data.get("selection") == AuditPlan.Selection.SAMPLE and not data.get("sample_size"):
            self.add_error("sample_size", "A sample needs its size: how many responses per system.")
        return data

    def _post_clean(self):
        # The service validates and saves the plan (and applies the selection); the form only checks input.
        pass
