"""Expert factuality audits: a study's audit plan, the responses it selected, each expert's audit of one
response and the spans they flagged.

The assignment rules mirror the rating engine's (raters.models) and are database constraints too: a response
is selected once per plan, an expert audits a response at most once, holds at most one open lease per plan,
and an audit is submitted with a verdict or not at all.
"""
from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from evalsite.studies.models import Response, Study, new_shuffle_key

MAX_AUDITS_PER_RESPONSE = 20


def new_audit_key() -> str:
    # The experts' links carry this, never the study slug: slugs often name the systems.
    return secrets.token_urlsafe(12)


def new_sample_seed() -> int:
    return secrets.randbelow(2**31)


class AuditPlan(models.Model):
    """Which responses of a study experts audit, how many experts audit each, and the experts' link."""

    class Selection(models.TextChoices):
        ALL = "all", "Every response"
        SAMPLE = "sample", "A random sample of N prompts, every system's response to them"
        DECIDED = "decided", "Responses in comparisons the crowd has decided"

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="audit_plan")
    key = models.CharField(max_length=40, unique=True, default=new_audit_key, editable=False,
                           help_text="Opaque id in the experts' link instead of the slug.")
    selection = models.CharField(max_length=10, choices=Selection.choices, default=Selection.ALL)
    sample_size = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="N: responses per system in a sample (the same N prompts for every system).")
    sample_seed = models.PositiveIntegerField(
        default=new_sample_seed, help_text="Fixes the sample: the same seed draws the same prompts again.")
    decided_min_judgments = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="A comparison is decided once it has this many counted judgments (empty: the study's k).")
    audits_per_response = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1), MaxValueValidator(MAX_AUDITS_PER_RESPONSE)],
        help_text="m: how many different experts audit each selected response.")
    lease_ttl_seconds = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(60)],
        help_text="A response an expert opened but did not submit in this time goes back to the queue "
                  "(their notes are kept and come back to them if it is still free).")
    instructions = models.TextField(blank=True, help_text="Markdown, shown to experts above each response.")
    is_open = models.BooleanField(default=True, help_text="Experts can audit now.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    selected_at = models.DateTimeField(null=True, blank=True, help_text="When the selection was last applied.")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(audits_per_response__gte=1) & Q(audits_per_response__lte=MAX_AUDITS_PER_RESPONSE),
                name="auditplan_m_in_range"),
            models.CheckConstraint(condition=~Q(selection="sample") | Q(sample_size__gte=1),
                                   name="auditplan_sample_has_size"),
        ]

    def __str__(self) -> str:
        return f"Audit plan of {self.study}"


class AuditTarget(models.Model):
    """One selected response, filled up to m audits breadth-first like a comparison is filled up to k."""

    plan = models.ForeignKey(AuditPlan, on_delete=models.CASCADE, related_name="targets")
    # RESTRICT: an audited response cannot be deleted on its own; deleting the study deletes both.
    response = models.ForeignKey(Response, on_delete=models.RESTRICT, related_name="audit_targets")
    selected_by = models.CharField(max_length=10, choices=AuditPlan.Selection.choices)
    # Kept by the audit engine in the same transaction as the rows they count (see Comparison.load).
    load = models.PositiveIntegerField(default=0, help_text="Submitted audits plus open leases.")
    audits_done = models.PositiveIntegerField(default=0, help_text="Submitted audits.")
    shuffle = models.PositiveIntegerField(default=new_shuffle_key)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["plan", "id"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "response"], name="audittarget_once_per_plan"),
            models.CheckConstraint(condition=Q(audits_done__lte=F("load")), name="audittarget_done_le_load"),
        ]
        indexes = [models.Index(fields=["plan", "load", "shuffle"], name="audittarget_next_idx")]

    def __str__(self) -> str:
        return f"Audit target #{self.pk}"


class Audit(models.Model):
    """One expert's audit of one response: a lease while open, a verdict once submitted."""

    class Status(models.TextChoices):
        LEASED = "leased", "Open"
        SUBMITTED = "submitted", "Submitted"
        EXPIRED = "expired", "Expired"

    class Verdict(models.TextChoices):
        NO_ERRORS = "no_errors", "No factual errors"
        MINOR = "minor", "Minor errors only"
        MAJOR = "major", "At least one major error"
        NOT_CHECKABLE = "not_checkable", "Not checkable"

    plan = models.ForeignKey(AuditPlan, on_delete=models.CASCADE, related_name="audits")
    target = models.ForeignKey(AuditTarget, on_delete=models.CASCADE, related_name="audits")
    # PROTECT: deleting an expert's account must not silently delete research data; deactivate them instead.
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="audits")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LEASED)
    verdict = models.CharField(max_length=14, choices=Verdict.choices, blank=True)
    comment = models.TextField(blank=True)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    server_seconds = models.FloatField(null=True, blank=True, help_text="From first lease to submit.")

    class Meta:
        ordering = ["leased_at"]
        constraints = [
            models.UniqueConstraint(fields=["target", "expert"], name="audit_once_per_expert"),
            models.UniqueConstraint(fields=["plan", "expert"], condition=Q(status="leased"),
                                    name="audit_one_open_per_expert"),
            models.CheckConstraint(
                condition=Q(status="submitted") & ~Q(verdict="") | ~Q(status="submitted") & Q(verdict=""),
                name="audit_verdict_iff_submitted"),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(status="leased"), name="audit_open_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"Audit #{self.pk} ({self.status})"


class AuditFinding(models.Model):
    """A flagged span of the response: character offsets into its text (Python string indices, i.e. Unicode
    code points), the text they cover (checked on the server to equal text[start:end]), and what is wrong."""

    class Severity(models.TextChoices):
        MINOR = "minor", "Minor"
        MAJOR = "major", "Major"

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="findings")
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    quote = models.TextField()
    severity = models.CharField(max_length=5, choices=Severity.choices)
    note = models.TextField(help_text="What is wrong.")
    correction = models.TextField(help_text="What is right.")
    source_url = models.URLField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["audit", "start", "end", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="auditfinding_nonempty_span"),
            models.CheckConstraint(condition=Q(severity__in=["minor", "major"]), name="auditfinding_severity"),
            models.CheckConstraint(condition=~Q(note="") & ~Q(correction=""), name="auditfinding_has_note"),
        ]

    def __str__(self) -> str:
        return f"{self.get_severity_display()} finding [{self.start}:{self.end}]"
