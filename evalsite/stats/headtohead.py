"""Each candidate against the reference: win / tie / loss, the "win or tie" rate, the sign test, strength,
and the same counts per prompt category."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .bootstrap import DEFAULT_ROUNDS, DEFAULT_SEED, bootstrap_interval, resample_sums
from .data import Judgments, compact
from .proportions import BinomialTest, sign_test, wilson_interval
from .results import Interval, Proportion, ToDict

# Columns of the per-prompt sums kept for each candidate.
_WIN, _TIE, _LOSS, _BOTH_BAD, _STRENGTH_SUM, _STRENGTH_N = range(6)
_COLUMNS = 6


@dataclass(frozen=True)
class Strength(ToDict):
    """Mean strength-signed preference for the candidate: +s when the candidate won with strength s, -s
    when the reference won, 0 for a tie; over the judgments where strength was collected."""

    n: int
    mean: float
    bootstrap: Interval


@dataclass(frozen=True)
class HeadToHead(ToDict):
    """One candidate against the reference. Rates are over all n judgments of the pair; ``tie`` includes
    both-bad, which is also given alone; ``preference`` counts a tie as half a win."""

    candidate: int
    reference: int
    n: int
    wins: int
    ties: int
    losses: int
    both_bad: int
    win: Proportion
    tie: Proportion
    loss: Proportion
    win_or_tie: Proportion
    both_bad_rate: Proportion
    preference: Proportion
    sign_test: BinomialTest
    strength: Strength | None


def candidates_of(judgments: Judgments, reference: int) -> list[int]:
    """Systems judged against the reference at least once, in index order."""
    j = judgments
    other = np.concatenate([j.system_b[j.system_a == reference], j.system_a[j.system_b == reference]])
    return [int(c) for c in np.unique(other)]


def _oriented(judgments: Judgments, reference: int, candidate: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask of the candidate-vs-reference judgments, the candidate's outcome 1/0.5/0 for each judgment)."""
    j = judgments
    a_is_cand = (j.system_a == candidate) & (j.system_b == reference)
    b_is_cand = (j.system_b == candidate) & (j.system_a == reference)
    mask = a_is_cand | b_is_cand
    cand_outcome = np.where(a_is_cand, j.outcome, 1.0 - j.outcome)
    return mask, cand_outcome


def per_prompt_sums(judgments: Judgments, reference: int, candidates: list[int], prompt_index: np.ndarray,
                    n_prompts: int) -> np.ndarray:
    """(P x candidates x 6) sums per prompt: wins, ties (both-bad included), losses, both-bad,
    sum of signed strength, number of judgments with strength."""
    j = judgments
    out = np.zeros((n_prompts, len(candidates), _COLUMNS))
    for ci, cand in enumerate(candidates):
        mask, cand_outcome = _oriented(j, reference, cand)
        p = prompt_index[mask]
        o = cand_outcome[mask]
        out[:, ci, _WIN] = np.bincount(p, weights=(o == 1.0), minlength=n_prompts)
        out[:, ci, _TIE] = np.bincount(p, weights=(o == 0.5), minlength=n_prompts)
        out[:, ci, _LOSS] = np.bincount(p, weights=(o == 0.0), minlength=n_prompts)
        out[:, ci, _BOTH_BAD] = np.bincount(p, weights=j.both_bad[mask], minlength=n_prompts)
        if j.strength is not None:
            s = j.strength[mask]
            have = ~np.isnan(s)
            signed = np.where(have, np.nan_to_num(s) * np.sign(o - 0.5), 0.0)
            out[:, ci, _STRENGTH_SUM] = np.bincount(p, weights=signed, minlength=n_prompts)
            out[:, ci, _STRENGTH_N] = np.bincount(p, weights=have, minlength=n_prompts)
    return out


def _rates(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Rates from sums on the last axis; nan where a replicate has no judgments of the pair."""
    w, t, lo, bb = sums[..., _WIN], sums[..., _TIE], sums[..., _LOSS], sums[..., _BOTH_BAD]
    n = w + t + lo
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "win": w / n,
            "tie": t / n,
            "loss": lo / n,
            "win_or_tie": (w + t) / n,
            "both_bad_rate": bb / n,
            "preference": (w + 0.5 * t) / n,
            "strength": sums[..., _STRENGTH_SUM] / sums[..., _STRENGTH_N],
        }


def head_to_head(judgments: Judgments, reference: int, *, candidates: list[int] | None = None,
                 confidence: float = 0.95, rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED) -> list[HeadToHead]:
    """Win / tie / loss of each candidate against the reference, with intervals and a sign test.

    For a candidate with w wins, t ties (both-bad included) and l losses in n = w + t + l judgments against
    the reference: win = w/n, tie = t/n, loss = l/n, win_or_tie = (w + t)/n (the measure reported by the
    imitation-model papers, e.g. Gudibande et al., "The False Promise of Imitating Proprietary LLMs", 2023,
    and Geng et al., "Koala", 2023), both_bad = b/n, and preference = (w + t/2)/n (a tie as half a win, the
    quantity Bradley-Terry models). Each rate has a 95% Wilson interval (judgments as independent) and a
    cluster-bootstrap percentile interval over prompts (``rounds`` rounds, seeded; see bootstrap.py), which
    is the one to trust when prompts were judged several times. The sign test is on the w + l decisive
    judgments. Strength, where collected, is summarised as the mean of +s (candidate preferred with strength
    s) and -s (reference preferred), 0 for ties.
    """
    j = judgments
    if candidates is None:
        candidates = candidates_of(j, reference)
    if not candidates:
        return []
    _, prompt_index = compact(j.prompt)
    n_prompts = int(prompt_index.max()) + 1 if len(prompt_index) else 0
    sums = per_prompt_sums(j, reference, candidates, prompt_index, n_prompts)
    total = sums.sum(axis=0)
    boot = resample_sums(sums.reshape(n_prompts, -1), rounds, seed).reshape(rounds, len(candidates), _COLUMNS)
    boot_rates = _rates(boot)
    out = []
    for ci, cand in enumerate(candidates):
        w, t, lo, bb = (int(round(total[ci, k])) for k in (_WIN, _TIE, _LOSS, _BOTH_BAD))
        n = w + t + lo

        def prop(name: str, count: float, n: int = n, ci: int = ci) -> Proportion:
            return Proportion(
                count=count, n=n, rate=count / n if n else math.nan,
                wilson=wilson_interval(count, n, confidence),
                bootstrap=bootstrap_interval(boot_rates[name][:, ci], confidence),
            )

        strength = None
        n_strength = int(round(total[ci, _STRENGTH_N]))
        if j.strength is not None and n_strength:
            strength = Strength(
                n=n_strength,
                mean=float(total[ci, _STRENGTH_SUM] / n_strength),
                bootstrap=bootstrap_interval(boot_rates["strength"][:, ci], confidence),
            )
        out.append(HeadToHead(
            candidate=cand, reference=reference, n=n, wins=w, ties=t, losses=lo, both_bad=bb,
            win=prop("win", w), tie=prop("tie", t), loss=prop("loss", lo), win_or_tie=prop("win_or_tie", w + t),
            both_bad_rate=prop("both_bad_rate", bb), preference=prop("preference", w + 0.5 * t),
            sign_test=sign_test(w, lo), strength=strength,
        ))
    return out


@dataclass(frozen=True)
class CategoryRow(ToDict):
    """One candidate against the reference within one prompt category (Wilson intervals only: a
    category's handful of prompts is too few for a stable cluster bootstrap)."""

    category: int
    candidate: int
    n: int
    n_prompts: int
    wins: int
    ties: int
    losses: int
    win: Proportion
    tie: Proportion
    loss: Proportion
    win_or_tie: Proportion


def by_category(judgments: Judgments, reference: int, *, candidates: list[int] | None = None,
                confidence: float = 0.95) -> list[CategoryRow]:
    """The head-to-head counts split by prompt category, with Wilson intervals (formulas as in
    :func:`head_to_head`). Judgments without a category array give no rows. Rows for every (category,
    candidate) with at least one judgment, ordered by category then candidate."""
    j = judgments
    if j.category is None or not len(j):
        return []
    if candidates is None:
        candidates = candidates_of(j, reference)
    n_cat = int(j.category.max()) + 1
    _, prompt_index = compact(j.prompt)
    rows = []
    for cand in candidates:
        mask, cand_outcome = _oriented(j, reference, cand)
        cat, o = j.category[mask], cand_outcome[mask]
        w = np.bincount(cat, weights=(o == 1.0), minlength=n_cat)
        t = np.bincount(cat, weights=(o == 0.5), minlength=n_cat)
        lo = np.bincount(cat, weights=(o == 0.0), minlength=n_cat)
        # Distinct prompts per category: unique (category, prompt) pairs.
        keys = np.unique(cat * (int(prompt_index.max()) + 1) + prompt_index[mask]) if len(cat) else np.zeros(0, int)
        n_prompts = np.bincount(keys // (int(prompt_index.max()) + 1), minlength=n_cat) if len(keys) else np.zeros(n_cat, int)
        for c in range(n_cat):
            n = int(w[c] + t[c] + lo[c])
            if not n:
                continue

            def prop(count: float, n=n) -> Proportion:
                return Proportion(count=count, n=n, rate=count / n, wilson=wilson_interval(count, n, confidence))

            rows.append(CategoryRow(
                category=c, candidate=cand, n=n, n_prompts=int(n_prompts[c]),
                wins=int(w[c]), ties=int(t[c]), losses=int(lo[c]),
                win=prop(int(w[c])), tie=prop(int(t[c])), loss=prop(int(lo[c])), win_or_tie=prop(int(w[c] + t[c])),
            ))
    rows.sort(key=lambda r: (r.category, r.candidate))
    return rows
