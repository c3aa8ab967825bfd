"""Studies with judgments for the results tests, built directly (fast and exactly as specified)."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsite.studies.models import Comparison, Response, Study, System
from evalsite.studies.services import comparison_mark_gold, comparisons_build
from raters.models import Assignment, Judgment, Rater
from tests.factories import ResearcherFactory, make_study_with_responses


@pytest.fixture(autouse=True)
def empty_cache():
    # The locmem cache lives as long as the test process, and test databases reuse primary keys.
    cache.clear()
    yield
    cache.clear()


def make_rater(study: Study, n: int, provider: str = "prolific") -> Rater:
    return Rater.objects.create(study=study, provider=provider, external_id=f"worker-{n}",
                                consented_at=timezone.now())


def side_of(comparison: Comparison, system_name: str) -> str:
    """"a" or "b": which of the comparison's responses is this system's."""
    if comparison.response_a.system.name == system_name:
        return "a"
    if comparison.response_b.system.name == system_name:
        return "b"
    raise ValueError(f"{system_name} is not in comparison {comparison.pk}")


def judge(comparison: Comparison, rater: Rater, outcome: str, *, left_is_a: bool = True, strength: str = "",
          reason: str = "", excluded: bool = False, excluded_reason: str = "", server_seconds: float = 20.0,
          active_seconds: float | None = 15.0, too_fast: bool = False) -> Judgment:
    """Record a judgment as the rating service would: ``outcome`` is the winning side of the comparison
    ("a", "b"), "tie" or "both_bad"; the choice as shown follows from ``left_is_a``."""
    now = timezone.now()
    if outcome == "a":
        choice, winner = ("left" if left_is_a else "right"), "a"
    elif outcome == "b":
        choice, winner = ("right" if left_is_a else "left"), "b"
    else:
        choice, winner = outcome, "tie"
    assignment = Assignment.objects.create(
        comparison=comparison, rater=rater, left_is_a=left_is_a, is_gold=comparison.is_gold,
        status=Assignment.Status.SUBMITTED, leased_at=now - timedelta(seconds=server_seconds),
        expires_at=now + timedelta(minutes=10), closed_at=now)
    gold_passed = (winner == comparison.gold_expected) if comparison.is_gold else None
    judgment = Judgment.objects.create(
        assignment=assignment, comparison=comparison, rater=rater, choice=choice, winner=winner,
        winner_response_id={"a": comparison.response_a_id, "b": comparison.response_b_id}.get(winner),
        strength=strength, reason=reason, server_seconds=server_seconds, active_seconds=active_seconds,
        is_gold=comparison.is_gold, gold_passed=gold_passed, too_fast=too_fast, excluded=excluded,
        excluded_reason=excluded_reason)
    # The engine's counters: every judgment is "done"; one that counts also holds a place in `load`.
    counts = not comparison.is_gold and not excluded
    Comparison.objects.filter(pk=comparison.pk).update(judgments_done=F("judgments_done") + 1,
                                                       load=F("load") + int(counts))
    comparison.judgments_done += 1
    return judgment


STYLES = [
    "A short plain answer.",
    "## Answer\n\nHere is a longer answer with structure.\n\n- first point\n- second point\n- **third** point\n",
    "A medium answer that explains the idea in two sentences. It stays in prose.",
    "# Title\n\n1. step one\n2. step two\n\n**Bold** and __strong__ words, and more text to make it long. " * 2,
]


def make_judged_study(*, n_prompts: int = 12, candidates: int = 2, raters: int = 6, k: int = 3, seed: int = 1,
                      scale: str = Study.Scale.AB_TIE_BOTHBAD, excluded_rater: bool = True, gold: bool = True,
                      metadata: bool = True) -> Study:
    """A live study: a reference and ``candidates`` candidates on ``n_prompts`` prompts in two categories,
    each comparison judged by ``k`` raters with wins, losses, ties and both-bad; one rater's judgments
    excluded by quality control; one gold comparison with gold judgments; styles that vary."""
    rng = random.Random(seed)
    study = make_study_with_responses(n_prompts=n_prompts, candidates=candidates, scale=scale,
                                      judgments_per_comparison=k)
    if metadata:
        for i, system in enumerate(System.objects.filter(study=study, role=System.Role.CANDIDATE).order_by("name")):
            system.metadata = {"params_b": [7, 13, 30, 65][i % 4], "imitation_tokens_m": 50 * (i + 1),
                               "base_model": f"llama-{i}"}
            system.save(update_fields=["metadata"])
    for response in Response.objects.filter(prompt__study=study):
        response.text = rng.choice(STYLES) + f" ({response.system.name}, {response.prompt.external_id})"
        response.save(update_fields=["text"])
    comparisons_build(study=study)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    study.refresh_from_db()
    comparisons = list(Comparison.objects.filter(study=study).select_related("response_a__system",
                                                                            "response_b__system").order_by("pk"))
    gold_comparison = None
    if gold:
        gold_comparison = comparisons.pop()
        comparison_mark_gold(comparison=gold_comparison, expected="a")
        gold_comparison.refresh_from_db()
    pool = [make_rater(study, n) for n in range(raters)]
    strengths = study.scale == Study.Scale.AB_TIE_STRENGTH
    for comparison in comparisons:
        candidate_side = "a" if comparison.response_a.system.role == System.Role.CANDIDATE else "b"
        reference_side = "b" if candidate_side == "a" else "a"
        for rater in rng.sample(pool, k):
            roll = rng.random()
            if roll < 0.45:
                outcome = candidate_side
            elif roll < 0.75:
                outcome = reference_side
            elif roll < 0.9 or study.scale != Study.Scale.AB_TIE_BOTHBAD:
                outcome = "tie"
            else:
                outcome = "both_bad"
            strength = rng.choice(["slightly", "much"]) if strengths and outcome in ("a", "b") else ""
            judge(comparison, rater, outcome, left_is_a=rng.random() < 0.5, strength=strength,
                  reason=rng.choice(["", "clearer", "more accurate, shorter"]))
    if excluded_rater:
        rater = pool[0]
        reason = "blocked by a researcher"
        # As raters.services does when a researcher blocks a rater (without its claim machinery).
        counted = list(Judgment.objects.filter(rater=rater, is_gold=False).values_list("comparison_id", flat=True))
        Judgment.objects.filter(rater=rater).update(excluded=True, excluded_reason=reason)
        Comparison.objects.filter(pk__in=counted).update(load=F("load") - 1)
        Rater.objects.filter(pk=rater.pk).update(status=Rater.Status.BLOCKED, status_reason=reason)
    if gold_comparison is not None:
        for rater in pool[1:3]:
            judge(gold_comparison, rater, "a")
    return study


@pytest.fixture
def judged_study(db):
    return make_judged_study()


@pytest.fixture
def api(db):
    client = APIClient()
    user = ResearcherFactory()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client
