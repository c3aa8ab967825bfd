"""The core of the platform: a Study compares Systems on Prompts through their Responses.

Every uniqueness rule is a database constraint (not only a Python check), because imports, the API and
study files can all write concurrently.
"""
from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

# Path segments under /studies/ that are pages, not studies.
RESERVED_SLUGS = frozenset({"new", "account"})


def validate_study_slug(value: str) -> None:
    if value in RESERVED_SLUGS:
        raise ValidationError(f"{value!r} is reserved for a page of the site; choose another slug.")


def new_rater_key() -> str:
    return secrets.token_urlsafe(12)


def new_shuffle_key() -> int:
    return secrets.randbelow(2**31)


def new_completion_code() -> str:
    # Short, unambiguous upper-case codes: raters type them into Prolific or MTurk by hand.
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(10))


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        LIVE = "live", "Live"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    class Scale(models.TextChoices):
        AB_TIE = "ab_tie", "A better / B better / tie"
        AB_TIE_BOTHBAD = "ab_tie_bothbad", "A / B / tie / both bad"
        AB_TIE_STRENGTH = "ab_tie_strength", "A / B / tie, with strength (slightly / much)"

    class Pairing(models.TextChoices):
        VS_REFERENCE = "vs_reference", "Each candidate against the reference"
        ALL_PAIRS = "all_pairs", "All pairs of systems"

    class ReasonMode(models.TextChoices):
        NONE = "none", "Not asked"
        OPTIONAL = "optional", "Optional"
        REQUIRED = "required", "Required"

    slug = models.SlugField(max_length=80, unique=True, validators=[validate_study_slug])
    title = models.CharField(max_length=200, help_text="Researcher-facing; never shown to raters.")
    # Slugs and titles often name the systems ("koala-vs-chatgpt"), so raters see only these two.
    public_title = models.CharField(
        max_length=200, default="Which response is better?",
        help_text="The title raters see. Must not name or hint at the systems.",
    )
    rater_key = models.CharField(
        max_length=40, unique=True, default=new_rater_key, editable=False,
        help_text="Opaque id used in rater links instead of the slug.",
    )
    instructions = models.TextField(blank=True, help_text="Markdown, shown to raters before they start.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    scale = models.CharField(max_length=20, choices=Scale.choices, default=Scale.AB_TIE)
    pairing = models.CharField(max_length=20, choices=Pairing.choices, default=Pairing.VS_REFERENCE)
    reason_mode = models.CharField(max_length=10, choices=ReasonMode.choices, default=ReasonMode.OPTIONAL)

    judgments_per_comparison = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="k: how many different raters judge each comparison.",
    )
    per_rater_cap = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(1)], help_text="Most comparisons one rater may judge."
    )
    lease_ttl_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(30)],
        help_text="An assignment not submitted within this time returns to the pool.",
    )
    gold_rate = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of a rater's comparisons drawn from gold comparisons (0 to 1).",
    )
    gold_accuracy_threshold = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="A rater whose gold accuracy falls below this is screened out.",
    )
    gold_min_answered = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1)],
        help_text="Gold answers needed before the accuracy threshold applies.",
    )
    min_seconds_per_judgment = models.PositiveIntegerField(
        default=5, help_text="Judgments faster than this are flagged as too fast."
    )
    completion_code = models.CharField(max_length=40, default=new_completion_code)
    screened_out_code = models.CharField(max_length=40, default=new_completion_code)
    provider_settings = models.JSONField(
        default=dict, blank=True,
        help_text='Crowd provider settings, e.g. {"prolific_completion_url": "..."}.',
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(
                condition=Q(judgments_per_comparison__gte=1), name="study_k_at_least_one"
            ),
            models.CheckConstraint(condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="study_gold_rate_0_1"),
            models.CheckConstraint(
                condition=Q(gold_accuracy_threshold__gte=0) & Q(gold_accuracy_threshold__lte=1),
                name="study_gold_threshold_0_1",
            ),
            models.CheckConstraint(
                condition=~Q(completion_code=F("screened_out_code")), name="study_codes_differ"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("studies:detail", args=[self.slug])

    @property
    def allows_both_bad(self) -> bool:
        return self.scale == self.Scale.AB_TIE_BOTHBAD

    @property
    def asks_strength(self) -> bool:
        return self.scale == self.Scale.AB_TIE_STRENGTH

    @property
    def is_accepting_ratings(self) -> bool:
        return self.status == self.Status.LIVE


class System(models.Model):
    """A model under evaluation. Its name is a researcher-facing label and never reaches a rater."""

    class Role(models.TextChoices):
        REFERENCE = "reference", "Reference"
        CANDIDATE = "candidate", "Candidate"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="systems")
    name = models.CharField(
        max_length=100, help_text="How response files and exports refer to this system, e.g. koala-13b."
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.CANDIDATE)
    metadata = models.JSONField(
        default=dict, blank=True,
        help_text="Free metadata; numeric values (params_b, imitation_tokens_m) feed the scaling plots.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "-role", "name"]  # reference first ("reference" > "candidate")
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="system_unique_name_per_study"),
            models.UniqueConstraint(
                fields=["study"], condition=Q(role="reference"), name="system_one_reference_per_study"
            ),
            models.CheckConstraint(condition=~Q(name=""), name="system_name_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_role_display().lower()})"

    @property
    def is_reference(self) -> bool:
        return self.role == self.Role.REFERENCE


class ImportBatch(models.Model):
    """One imported file: what it held and who brought it, so every row can be traced back."""

    class Kind(models.TextChoices):
        PROMPTS = "prompts", "Prompts"
        RESPONSES = "responses", "Responses"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="import_batches")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.PositiveBigIntegerField()
    rows = models.PositiveIntegerField()
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    replace = models.BooleanField(default=False, help_text="Rows already in the study were replaced.")
    source = models.CharField(max_length=20, default="upload", help_text="upload, api, command or study_file.")
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-imported_at"]
        verbose_name_plural = "import batches"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} from {self.filename} ({self.rows} rows)"


class Prompt(models.Model):
    """A single prompt (`text`) or a multi-turn conversation (`messages`, ending with a user turn)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="prompts")
    external_id = models.CharField(max_length=200, help_text="The id in the researcher's file, e.g. koala_17.")
    text = models.TextField(blank=True)
    messages = models.JSONField(null=True, blank=True, help_text='[{"role": "user", "content": "..."}, ...]')
    category = models.CharField(max_length=100, blank=True, db_index=True)
    position = models.PositiveIntegerField(default=0, help_text="Order in the imported file.")
    import_batch = models.ForeignKey(ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="prompts")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["study", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "external_id"], name="prompt_unique_external_id_per_study"),
            models.CheckConstraint(condition=~Q(external_id=""), name="prompt_external_id_not_empty"),
            models.CheckConstraint(
                condition=~Q(text="") | Q(messages__isnull=False), name="prompt_has_text_or_messages"
            ),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def is_multi_turn(self) -> bool:
        return bool(self.messages)

    @property
    def turns(self) -> list[dict]:
        """The conversation as a list of {"role", "content"}; a single prompt is one user turn."""
        if self.messages:
            return list(self.messages)
        return [{"role": "user", "content": self.text}]

    @property
    def preview(self) -> str:
        """The last user turn: what the response answers."""
        for turn in reversed(self.turns):
            if turn.get("role") == "user":
                return turn.get("content", "")
        return self.text


class Response(models.Model):
    """What one system answered to one prompt, with where it came from."""

    class Source(models.TextChoices):
        IMPORT = "import", "Imported file"
        GENERATION = "generation", "Generated by the platform"

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField()
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.IMPORT)
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="responses"
    )
    generation_job_id = models.BigIntegerField(
        null=True, blank=True, help_text="models_serving.GenerationJob that produced it (kept as an id: "
        "the studies app does not depend on the generation app)."
    )
    model_name = models.CharField(max_length=200, blank=True)
    sampling_params = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=40, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    meta = models.JSONField(default=dict, blank=True, help_text="Free provenance from the imported file.")
    names_model = models.CharField(
        max_length=200, blank=True,
        help_text="The phrase where the response names a model or vendor; such a response can unblind raters.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["prompt", "system"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "system"], name="response_one_per_prompt_and_system"),
        ]

    def __str__(self) -> str:
        return f"{self.system.name} on {self.prompt.external_id}"


class Comparison(models.Model):
    """Two responses to one prompt, to be judged k times.

    The pair is stored in a canonical order (response_a_id < response_b_id) so the same pair can exist only
    once; which one a rater sees on the left is decided per assignment, not here.
    """

    class Expected(models.TextChoices):
        A = "a", "Response A is better"
        B = "b", "Response B is better"
        TIE = "tie", "Tie"

    # Indexes: the rating loop updates comparisons all the time, and every index is written on each update,
    # so the ones a longer index already leads with are left out (study -> comparison_next_idx,
    # response_a -> comparison_unique_pair), as is a lone index on a boolean.
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="comparisons", db_index=False)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="comparisons")
    # RESTRICT, not PROTECT: a compared response cannot be deleted on its own, but deleting the whole study
    # (which deletes the comparisons too) must work.
    response_a = models.ForeignKey(Response, on_delete=models.RESTRICT, related_name="comparisons_as_a",
                                   db_index=False)
    response_b = models.ForeignKey(Response, on_delete=models.RESTRICT, related_name="comparisons_as_b")
    is_gold = models.BooleanField(default=False)
    gold_expected = models.CharField(max_length=3, choices=Expected.choices, blank=True)
    gold_note = models.TextField(blank=True, help_text="Why this is the right answer (researcher-only).")
    # Both counters are maintained by the rating engine in the same transaction as the rows they count, so
    # neither "has this comparison been judged?" nor breadth-first assignment ever counts rows.
    judgments_done = models.PositiveIntegerField(
        default=0, help_text="Judgments ever recorded, excluded ones included: what a change could invalidate."
    )
    load = models.PositiveIntegerField(
        default=0, help_text="Judgments that count plus open leases: the assignment engine fills up to k."
    )
    # A random key fixed at creation: ordering by (load, shuffle) is "fewest first, then random", and an
    # index serves it without sorting the whole study.
    shuffle = models.PositiveIntegerField(default=new_shuffle_key)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "prompt", "id"]
        constraints = [
            models.UniqueConstraint(fields=["response_a", "response_b"], name="comparison_unique_pair"),
            models.CheckConstraint(condition=Q(response_a__lt=F("response_b")), name="comparison_canonical_order"),
            models.CheckConstraint(
                condition=Q(is_gold=False, gold_expected="") | Q(is_gold=True) & ~Q(gold_expected=""),
                name="comparison_gold_has_expected_answer",
            ),
        ]
        indexes = [
            models.Index(fields=["study", "is_gold", "load", "shuffle"], name="comparison_next_idx"),
        ]

    def __str__(self) -> str:
        return f"Comparison #{self.pk} on {self.prompt.external_id}"
