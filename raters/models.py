"""Raters, their assignments (leases on comparisons) and their judgments.

The uniqueness rules that keep the numbers honest are database constraints: one rater per (study, provider,
external id), one assignment per (comparison, rater), at most one open assignment per rater, one judgment
per assignment.
"""
from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q

from evalsite.studies.models import Comparison, Response, Study


def new_session_token() -> str:
    return secrets.token_urlsafe(18)


def new_pseudonym() -> str:
    # Exports and researcher pages show this instead of the provider's worker id.
    return "r-" + secrets.token_hex(5)


class Rater(models.Model):
    class Provider(models.TextChoices):
        PROLIFIC = "prolific", "Prolific"
        MTURK = "mturk", "Mechanical Turk"
        GENERIC = "generic", "Generic link"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SCREENED_OUT = "screened_out", "Screened out by quality control"
        BLOCKED = "blocked", "Blocked by a researcher"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="raters")
    provider = models.CharField(max_length=10, choices=Provider.choices)
    external_id = models.CharField(max_length=200, help_text="PROLIFIC_PID, MTurk workerId or the generic code.")
    pseudonym = models.CharField(max_length=20, unique=True, default=new_pseudonym)
    # The rater's pages live under /r/t/<token>/: MTurk shows them in a third-party iframe, where browsers
    # often drop cookies, so the session (and the proof that a POST comes from this rater) is in the URL.
    token = models.CharField(max_length=40, unique=True, default=new_session_token, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    status_reason = models.CharField(max_length=300, blank=True)
    provider_data = models.JSONField(
        default=dict, blank=True, help_text="Provider session data: Prolific STUDY_ID/SESSION_ID, MTurk "
        "assignmentId/hitId/turkSubmitTo.",
    )
    consented_at = models.DateTimeField(null=True, blank=True)
    # Counters kept in the same transaction as the judgments they count, so a rating round trip never
    # counts rows.
    judgments_count = models.PositiveIntegerField(default=0, help_text="Non-gold judgments submitted.")
    gold_answered = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["study", "first_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["study", "provider", "external_id"], name="rater_unique_per_study_provider"),
            models.CheckConstraint(condition=~Q(external_id=""), name="rater_external_id_not_empty"),
            models.CheckConstraint(condition=Q(gold_correct__lte=models.F("gold_answered")),
                                   name="rater_gold_correct_le_answered"),
        ]

    def __str__(self) -> str:
        return f"{self.pseudonym} ({self.get_provider_display()})"

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answered if self.gold_answered else None

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Assignment(models.Model):
    """A lease of one comparison to one rater, with the side each response is shown on."""

    class Status(models.TextChoices):
        LEASED = "leased", "Leased"
        SUBMITTED = "submitted", "Submitted"
        EXPIRED = "expired", "Expired"
        RELEASED = "released", "Released"  # the rater was screened out or blocked mid-lease

    # No index of its own: assignment_once_per_rater (comparison, rater) leads with it.
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="assignments")
    # Decided on the server when the lease is made and stored, so a reload shows the same order.
    left_is_a = models.BooleanField()
    is_gold = models.BooleanField(default=False, help_text="Copied from the comparison when leased.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LEASED)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["leased_at"]
        constraints = [
            models.UniqueConstraint(fields=["comparison", "rater"], name="assignment_once_per_rater"),
            models.UniqueConstraint(fields=["rater"], condition=Q(status="leased"), name="assignment_one_open_per_rater"),
        ]
        indexes = [
            # Finding expired leases touches only open ones.
            models.Index(fields=["expires_at"], condition=Q(status="leased"), name="assignment_open_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"Assignment #{self.pk} ({self.status})"

    @property
    def left_response_id(self) -> int:
        return self.comparison.response_a_id if self.left_is_a else self.comparison.response_b_id

    @property
    def right_response_id(self) -> int:
        return self.comparison.response_b_id if self.left_is_a else self.comparison.response_a_id


class Judgment(models.Model):
    class Choice(models.TextChoices):
        LEFT = "left", "Response A (left) is better"
        RIGHT = "right", "Response B (right) is better"
        TIE = "tie", "Tie"
        BOTH_BAD = "both_bad", "Both are bad"

    class Winner(models.TextChoices):
        A = "a", "Comparison's response A"
        B = "b", "Comparison's response B"
        TIE = "tie", "Tie"

    class Strength(models.TextChoices):
        SLIGHTLY = "slightly", "Slightly better"
        MUCH = "much", "Much better"

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="judgment")
    # Denormalised from the assignment so results and exports read one table.
    # No index of its own: judgment_comparison_idx (comparison, excluded) leads with it.
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="judgments", db_index=False)
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="judgments")
    choice = models.CharField(max_length=10, choices=Choice.choices, help_text="As shown to the rater.")
    winner = models.CharField(max_length=3, choices=Winner.choices, help_text="Resolved to the comparison's a/b.")
    winner_response = models.ForeignKey(Response, null=True, blank=True, on_delete=models.RESTRICT, related_name="+")
    strength = models.CharField(max_length=10, choices=Strength.choices, blank=True)
    reason = models.TextField(blank=True)
    server_seconds = models.FloatField(help_text="From lease to submit, measured on the server.")
    active_seconds = models.FloatField(null=True, blank=True, help_text="Time the page was visible, reported by it.")
    is_gold = models.BooleanField(default=False)
    gold_passed = models.BooleanField(null=True, blank=True)
    too_fast = models.BooleanField(default=False)
    excluded = models.BooleanField(default=False)
    excluded_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["comparison", "rater"], name="judgment_once_per_rater"),
            models.CheckConstraint(
                condition=Q(choice="tie", winner="tie") | Q(choice="both_bad", winner="tie")
                | Q(choice__in=["left", "right"], winner__in=["a", "b"]),
                name="judgment_winner_matches_choice",
            ),
        ]
        indexes = [models.Index(fields=["comparison", "excluded"], name="judgment_comparison_idx")]

    def __str__(self) -> str:
        return f"Judgment #{self.pk}: {self.choice}"
