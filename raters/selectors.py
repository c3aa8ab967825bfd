"""Reads for the rater-facing pages.

Everything here returns only what a rater may see: the prompt, the two response texts in the order the
assignment fixed, and counts. System names, ids and metadata never leave this module.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from django.utils.safestring import SafeString

from evalsite import rawsql
from evalsite.studies.models import Comparison, Prompt, Study
from evalsite.studies.rendering import render_markdown
from raters.models import Assignment, Rater

ROLE_LABELS = {"user": "User", "assistant": "Assistant", "system": "Instructions to the assistant"}


def study_by_rater_key(rater_key: str) -> Study | None:
    return Study.objects.filter(rater_key=rater_key).first()


def rater_by_token(token: str) -> Rater | None:
    """The rater whose session this token is, with their study: every rater request starts here, so it is
    one hand-written statement (evalsite.rawsql says why)."""
    row = rawsql.fetchone(f"SELECT {rawsql.select_list(RATER_AND_STUDY)} FROM raters_rater r "
                          "JOIN studies_study s ON s.id = r.study_id WHERE r.token = %s", [token])
    if row is None:
        return None
    rater, rater.study = rawsql.build_all(RATER_AND_STUDY, row)
    return rater


RATER_AND_STUDY = ((Rater, "r", None), (Study, "s", None))


@dataclass(frozen=True)
class Turn:
    role: str  # user, assistant or system: used only for styling
    label: str
    html: SafeString


@dataclass(frozen=True)
class ComparisonView:
    """One comparison as a rater sees it: the conversation, then Response A (left) and Response B (right)."""

    turns: list[Turn]
    left_html: SafeString
    right_html: SafeString

    @property
    def is_multi_turn(self) -> bool:
        return len(self.turns) > 1


def conversation_turns(turns: list[dict]) -> list[Turn]:
    """A prompt's turns as a rater or expert sees them: labelled by role, rendered safely."""
    shown = []
    for turn in turns:
        role = str(turn.get("role") or "user").lower()
        shown.append(Turn(role=role if role in ROLE_LABELS else "user", label=ROLE_LABELS.get(role, "User"),
                          html=render_markdown(str(turn.get("content") or ""))))
    return shown


def comparison_view(assignment: Assignment) -> ComparisonView:
    """The assignment's comparison in its stored left/right order, rendered safely.

    A fresh lease arrives with the prompt and both responses already loaded (the engine reads them in the
    query that leases the comparison); otherwise one query fetches them.
    """
    if _texts_loaded(assignment):
        comparison = assignment.comparison
    else:
        comparison = (Comparison.objects.select_related("prompt", "response_a", "response_b")
                      .only("prompt__text", "prompt__messages", "response_a__text", "response_b__text")
                      .get(pk=assignment.comparison_id))
    a, b = comparison.response_a.text, comparison.response_b.text
    left, right = (a, b) if assignment.left_is_a else (b, a)
    return ComparisonView(turns=conversation_turns(comparison.prompt.turns), left_html=render_markdown(left),
                          right_html=render_markdown(right))


def _texts_loaded(assignment: Assignment) -> bool:
    if not Assignment._meta.get_field("comparison").is_cached(assignment):
        return False
    fields = [Comparison._meta.get_field(name) for name in ("prompt", "response_a", "response_b")]
    return all(field.is_cached(assignment.comparison) for field in fields)


def example_comparison_view() -> ComparisonView:
    """A neutral built-in comparison for the Mechanical Turk preview, which must not show the study's data."""
    prompt = Prompt(text="What is a simple way to keep cut flowers fresh for longer?")
    return ComparisonView(
        turns=conversation_turns(prompt.turns),
        left_html=render_markdown(
            "A few habits help:\n\n"
            "1. **Trim the stems** at an angle every two or three days.\n"
            "2. **Change the water** when it turns cloudy.\n"
            "3. Keep the vase away from direct sunlight and ripening fruit.\n"
        ),
        right_html=render_markdown(
            "Put them in water and keep them somewhere cool. Changing the water now and then also helps."
        ),
    )


@dataclass(frozen=True)
class Progress:
    current: int  # the comparison on screen, counting from 1
    total: int


def rater_progress(rater: Rater) -> Progress:
    """"7 of 20": the comparisons done plus the one on screen, out of what this rater will be given.

    Gold comparisons are mixed in unannounced, so they are counted like any other: the counter must not stall
    after one and give it away. The total is the ordinary comparisons this rater can get (the cap, or fewer
    in a small study) grown by the study's gold rate.
    """
    study = rater.study
    ordinary = max(min(study.per_rater_cap, _ordinary_comparisons(study)), 1)
    total = round(ordinary / (1 - study.gold_rate)) if study.gold_rate < 1 else ordinary
    done = rater.judgments_count + rater.gold_answered
    return Progress(current=done + 1, total=max(total, done + 1))


_COUNT_TTL = 30.0  # seconds; comparisons are added rarely (when a researcher builds them)
_counts: dict[tuple[int, str, int], tuple[float, int]] = {}


def _ordinary_comparisons(study: Study) -> int:
    """How many ordinary comparisons the study has, up to the per-rater cap.

    Counting stops at the cap, so it costs the same in a study of a thousand or a million; the answer is
    kept in this process for a few seconds, so the rating loop does not ask the database every round trip.
    The key includes the random rater_key, so a reused primary key (tests) never sees another study's count.
    """
    key = (study.pk, study.rater_key, study.per_rater_cap)
    now = time.monotonic()
    cached = _counts.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    count = Comparison.objects.filter(study_id=study.pk, is_gold=False).order_by()[:study.per_rater_cap].count()
    _counts[key] = (now + _COUNT_TTL, count)
    return count


def rater_has_judged(rater: Rater) -> bool:
    """Whether the rater has submitted anything at all (gold included): it earns the completion code."""
    return rater.judgments_count > 0 or rater.gold_answered > 0
