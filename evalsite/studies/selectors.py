"""Reads for studies: lists, coverage, who may do what. Views and the API call these, never raw queries."""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum

from evalsite.studies.models import Comparison, ImportBatch, Prompt, Response, Study, System


def user_is_researcher(user) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return user.groups.filter(name=settings.RESEARCHERS_GROUP).exists()


def study_list() -> QuerySet[Study]:
    return Study.objects.annotate(
        n_systems=Count("systems", distinct=True),
        n_prompts=Count("prompts", distinct=True),
    ).order_by("-created_at")


def study_get(*, slug: str) -> Study:
    return Study.objects.get(slug=slug)


def study_systems(*, study: Study) -> list[System]:
    return list(study.systems.order_by("-role", "name"))


@dataclass
class SystemCoverage:
    system: System
    responses: int
    prompts: int
    missing_ids: list[str]  # at most `missing_limit` ids, in file order
    missing: int

    @property
    def complete(self) -> bool:
        return self.missing == 0

    @property
    def percent(self) -> float:
        return 100.0 * self.responses / self.prompts if self.prompts else 0.0


def study_coverage(*, study: Study, missing_limit: int = 50) -> list[SystemCoverage]:
    """Per system: how many prompts have a response and which ones are missing."""
    total = study.prompts.count()
    rows = []
    for system in study_systems(study=study):
        answered = Response.objects.filter(system=system).count()
        missing_qs = (Prompt.objects.filter(study=study).exclude(responses__system=system)
                      .order_by("position", "pk").values_list("external_id", flat=True))
        missing = total - answered
        rows.append(SystemCoverage(system=system, responses=answered, prompts=total,
                                   missing_ids=list(missing_qs[:missing_limit]) if missing else [],
                                   missing=missing))
    return rows


@dataclass
class StudyOverview:
    prompts: int
    categories: list[tuple[str, int]]
    systems: int
    responses: int
    comparisons: int
    gold_comparisons: int
    judgments_done: int
    judgments_needed: int


def study_overview(*, study: Study) -> StudyOverview:
    comparisons = study.comparisons.aggregate(
        n=Count("pk"), gold=Count("pk", filter=Q(is_gold=True)), done=Sum("judgments_done")
    )
    categories = list(
        study.prompts.values_list("category").annotate(n=Count("pk")).order_by("-n", "category")
    )
    return StudyOverview(
        prompts=study.prompts.count(),
        categories=[(c or "(none)", n) for c, n in categories],
        systems=study.systems.count(),
        responses=Response.objects.filter(prompt__study=study).count(),
        comparisons=comparisons["n"],
        gold_comparisons=comparisons["gold"],
        judgments_done=comparisons["done"] or 0,
        judgments_needed=comparisons["n"] * study.judgments_per_comparison,
    )


def study_import_batches(*, study: Study, limit: int = 20) -> QuerySet[ImportBatch]:
    return study.import_batches.select_related("imported_by")[:limit]


def study_comparisons(*, study: Study) -> QuerySet[Comparison]:
    return study.comparisons.select_related("prompt", "response_a__system", "response_b__system")


def study_prompts(*, study: Study, category: str | None = None) -> QuerySet[Prompt]:
    """The study's prompts in file order; `category` "" selects those without one, None all."""
    prompts = study.prompts.order_by("position", "pk")
    if category is not None:
        prompts = prompts.filter(category=category)
    return prompts


def study_prompt_categories(*, study: Study) -> list[str]:
    return list(study.prompts.order_by("category").values_list("category", flat=True).distinct())


def api_token_get(*, user):
    """The user's REST API token, or None if they have not created one."""
    from rest_framework.authtoken.models import Token

    return Token.objects.filter(user=user).first()


def _per_study(queryset: QuerySet, study_path: str, aggregate):
    """A correlated subquery aggregating `queryset` per study; unlike joins, several don't multiply."""
    from django.db.models import OuterRef, Subquery
    from django.db.models.functions import Coalesce

    rows = (queryset.filter(**{study_path: OuterRef("pk")}).order_by().values(study_path)
            .annotate(value=aggregate).values("value")[:1])
    return Coalesce(Subquery(rows), 0)


def study_list_with_counts() -> QuerySet[Study]:
    """Studies newest first, each with how many systems, prompts, responses, comparisons and judgments."""
    return Study.objects.select_related("created_by").annotate(
        n_systems=_per_study(System.objects.all(), "study", Count("pk")),
        n_prompts=_per_study(Prompt.objects.all(), "study", Count("pk")),
        n_responses=_per_study(Response.objects.all(), "prompt__study", Count("pk")),
        n_comparisons=_per_study(Comparison.objects.all(), "study", Count("pk")),
        n_judgments=_per_study(Comparison.objects.all(), "study", Sum("judgments_done")),
    ).order_by("-created_at", "-pk")


def study_get_with_counts(*, slug: str) -> Study:
    return study_list_with_counts().get(slug=slug)


def system_get(*, study: Study, name: str) -> System:
    return study.systems.get(name=name)


def study_responses(*, study: Study, system: System | None = None) -> QuerySet[Response]:
    """The study's responses in prompt file order, reference first within a prompt."""
    responses = Response.objects.filter(prompt__study=study).select_related("prompt", "system")
    if system is not None:
        responses = responses.filter(system=system)
    return responses.order_by("prompt__position", "prompt_id", "-system__role", "system__name")
